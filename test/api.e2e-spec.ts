import { S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { freePort } from './support/process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootApp, TestApp, tempDir } from './support/app';
import { contentFor, emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

const API_KEY = 'test-api-key-0123456789';
const KEYS = [
  'docs/readme.txt',
  'docs/café menu.txt',
  'docs/a+b%20c.txt',
  'data/1.jsonl',
  'data/2.jsonl',
  'data/3.jsonl',
  '.hidden/dot.txt',
];

describe('REST control plane', () => {
  let s3: S3Client;
  let bucket: string;
  let t: TestApp;

  beforeAll(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    for (const key of KEYS) await put(s3, bucket, key, contentFor(key, 1000));
    t = await bootApp({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: emulatorEndpoint(),
      API_KEY,
      DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dead?token=t-0123456789',
      // A secret pasted where none is expected.
      METRICS_EMF_NAMESPACE: API_KEY,
    });
    await t.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
  });
  afterAll(async () => {
    await t.close();
    s3.destroy();
  });

  const get = (path: string) => t.http().get(path).set('x-api-key', API_KEY);

  describe('service info', () => {
    it('GET / names the service and links the docs, without a key', async () => {
      const res = await t.http().get('/').expect(200);
      expect(res.body).toMatchObject({ name: 's3-sync-service', links: expect.objectContaining({ docs: '/docs' }) });
      // The bucket is named only to callers holding the key.
      expect(res.body.bucket).toBeUndefined();
      expect((await get('/').expect(200)).body.bucket).toBe(bucket);
      expect(res.body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    });

    it('GET /ping answers pong', async () => {
      await t.http().get('/ping').expect(200, { pong: true });
    });

    it('carries a request id in every error body, taken from x-request-id when given', async () => {
      const res = await t.http().get('/api/v1/sync/runs/not-a-uuid').set('x-api-key', API_KEY).set('x-request-id', 'req-42').expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, correlationId: 'req-42' });
    });
  });

  describe('API key', () => {
    it.each(['/api/v1/config', '/api/v1/stats', '/api/v1/files', '/api/v1/sync/runs', '/api/v1/download/data/1.jsonl'])(
      'GET %s needs the key',
      async (path) => {
        const res = await t.http().get(path).expect(401);
        expect(res.body.message).toMatch(/API key is required/);
        await t.http().get(path).set('x-api-key', 'wrong-key-wrong-key').expect(401);
        await t.http().get(path).set('authorization', `Bearer ${API_KEY}`).expect(200);
      },
    );

    it('POST /api/v1/sync needs the key', async () => {
      await t.http().post('/api/v1/sync').expect(401);
    });

    it('health stays open', async () => {
      await t.http().get('/api/v1/health/live').expect(200);
    });
  });

  describe('GET /api/v1/config', () => {
    it('shows the effective configuration with the key redacted', async () => {
      const res = await get('/api/v1/config').expect(200);
      expect(res.body).toMatchObject({ s3: { bucket, forcePathStyle: true }, sync: expect.objectContaining({ maxDelete: 1000 }) });
      expect(res.body.api.apiKey).toBe('[redacted]');
      expect(JSON.stringify(res.body)).not.toContain(API_KEY);
      expect(JSON.stringify(res.body)).not.toMatch(/secretAccessKey|AWS_SECRET/i);
    });

    it('shows URLs without their query values, and masks a secret value in any field', async () => {
      const res = await get('/api/v1/config').expect(200);
      expect(res.body.events.dlqUrl).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/dead?token=[redacted]');
      expect(res.body.metrics.emfNamespace).toBe('[redacted]');
      expect(JSON.stringify(res.body)).not.toContain('t-0123456789');
    });
  });

  describe('GET /api/v1/stats', () => {
    it('reports totals and the last run', async () => {
      const res = await get('/api/v1/stats').expect(200);
      expect(res.body.totals).toMatchObject({ objects: KEYS.length, bytes: KEYS.length * 1000 });
      expect(res.body.totals.runs).toBeGreaterThanOrEqual(1);
      expect(res.body.lastRun).toMatchObject({ status: 'completed', counts: expect.objectContaining({ downloaded: KEYS.length }) });
      expect(res.body.running).toEqual([]);
    });
  });

  describe('GET /api/v1/files', () => {
    it.each(['local', 's3'])('pages through source=%s with a cursor', async (source) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `/api/v1/files?source=${source}&prefix=data/&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await get(q).expect(200);
        expect(res.body.files.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.files.map((f: { key: string }) => f.key));
        cursor = res.body.nextCursor as string | null;
      } while (cursor);
      expect(seen).toEqual(['data/1.jsonl', 'data/2.jsonl', 'data/3.jsonl']);
    });

    it('describes local files with how they were verified', async () => {
      const res = await get('/api/v1/files?prefix=docs/readme').expect(200);
      expect(res.body.files).toEqual([
        expect.objectContaining({ key: 'docs/readme.txt', size: 1000, verifiedBy: 'md5', localPath: 'docs/readme.txt' }),
      ]);
    });

    it.each([
      ['source=ftp', /source must be one of/],
      ['limit=0', /limit must not be less than 1/],
      ['limit=abc', /limit must be an integer/],
      ['cursor=%24%24%24', /cursor/],
      ['unknown=1', /property unknown should not exist/],
    ])('answers 400 naming the parameter for %s', async (query, message) => {
      const res = await get(`/api/v1/files?${query}`).expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(message);
    });
  });

  describe('POST /api/v1/sync parameters', () => {
    it('answers 400 for a non-boolean flag', async () => {
      const res = await t.http().post('/api/v1/sync?dryRun=perhaps').set('x-api-key', API_KEY).expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(/dryRun must be a boolean/);
    });

    it('answers 404 for an unknown run', async () => {
      await get('/api/v1/sync/runs/7d444840-9dc0-11d1-b245-5ffdce74fad2').expect(404);
    });
  });

  describe('GET /api/v1/download/{path}', () => {
    it('streams a file with type, length, ETag and Last-Modified', async () => {
      const res = await get('/api/v1/download/data/1.jsonl').expect(200);
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers.etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(res.headers['last-modified']).toBeDefined();
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(Buffer.from(res.text ?? res.body)).toEqual(contentFor('data/1.jsonl', 1000));
    });

    it.each([
      ['docs/caf%C3%A9%20menu.txt', 'docs/café menu.txt'],
      ['docs/a%2Bb%2520c.txt', 'docs/a+b%20c.txt'],
      ['docs/a+b%2520c.txt', 'docs/a+b%20c.txt'],
      ['.hidden/dot.txt', '.hidden/dot.txt'],
      ['docs%2Freadme.txt', 'docs/readme.txt'],
    ])('decodes %s to the key %s', async (path, key) => {
      const res = await get(`/api/v1/download/${path}`).responseType('blob').expect(200);
      expect(res.body).toEqual(contentFor(key, 1000));
    });

    it('answers a Range request with 206 and exactly those bytes', async () => {
      const res = await get('/api/v1/download/data/2.jsonl').set('range', 'bytes=10-19').responseType('blob').expect(206);
      expect(res.headers['content-range']).toBe('bytes 10-19/1000');
      expect(res.body).toEqual(contentFor('data/2.jsonl', 1000).subarray(10, 20));
    });

    it('answers 416 to an unsatisfiable range', async () => {
      await get('/api/v1/download/data/2.jsonl').set('range', 'bytes=5000-6000').expect(416);
    });

    it('answers 304 to If-None-Match with the ETag, and to If-Modified-Since', async () => {
      const first = await get('/api/v1/download/data/3.jsonl').expect(200);
      await get('/api/v1/download/data/3.jsonl').set('if-none-match', first.headers.etag).expect(304);
      await get('/api/v1/download/data/3.jsonl').set('if-modified-since', first.headers['last-modified']).expect(304);
      await get('/api/v1/download/data/3.jsonl').set('if-none-match', '"other"').expect(200);
    });

    it('answers 404 for a file that is not mirrored', async () => {
      const res = await get('/api/v1/download/data/nope.jsonl').expect(404);
      expect(res.body.message).toMatch(/not in the mirror/);
    });

    it('never serves a file outside the mirror, however the path is encoded', async () => {
      const secret = join(t.mirrorDir, '..', 'secret.txt');
      await writeFile(secret, 'top secret');
      const attempts = [
        '../secret.txt',
        '..%2Fsecret.txt',
        '%2E%2E%2Fsecret.txt',
        '%2e%2e/secret.txt',
        'data/..%2F..%2Fsecret.txt',
        '..%5Csecret.txt',
        '%2Fetc%2Fpasswd',
        '%252e%252e%252fsecret.txt',
        'data%00.jsonl',
        'data/1.jsonl%00',
        '..%c0%afsecret.txt',
      ];
      for (const path of attempts) {
        const res = await get(`/api/v1/download/${path}`);
        expect([400, 404]).toContain(res.status);
        expect(res.text).not.toContain('top secret');
      }
      expect(existsSync(secret)).toBe(true);
    });

    it('does not serve internal temp files', async () => {
      await writeFile(join(t.mirrorDir, 'data', '.x.s3sync-partial'), 'partial');
      await get('/api/v1/download/data/.x.s3sync-partial').expect(400);
    });
  });

  describe('health', () => {
    it('is ready when the bucket, the directory, the disk and the store are fine', async () => {
      const res = await t.http().get('/api/v1/health').expect(200);
      // The fields the FastAPI service's clients read, then terminus's checks under their own key.
      expect(res.body).toMatchObject({
        status: 'healthy',
        message: 'Service is healthy',
        s3_connection: true,
        directory_writable: true,
        download_directory: t.mirrorDir,
        timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      });
      expect(res.body.checks.status).toBe('ok');
      expect(Object.keys(res.body.checks.info).sort()).toEqual(['bucket', 'disk', 'downloadDir', 'downstream', 'stateStore']);
    });

    it('answers 503 naming the failed check when the bucket is unreachable', async () => {
      const other = await bootApp({ S3_BUCKET_NAME: 'no-such-bucket-here', S3_ENDPOINT: emulatorEndpoint() });
      try {
        const res = await other.http().get('/api/v1/health').expect(503);
        expect(res.body).toMatchObject({ status: 'unhealthy', s3_connection: false, directory_writable: true });
        expect(res.body.message).toContain('bucket');
        expect(res.body.checks.status).toBe('error');
        expect(Object.keys(res.body.checks.error)).toEqual(['bucket']);
      } finally {
        await other.close();
      }
    });
  });

  describe('OpenAPI', () => {
    it('documents every route with schemas', async () => {
      const res = await t.http().get('/docs-json').expect(200);
      const paths = Object.keys(res.body.paths);
      for (const p of [
        '/api/v1/sync',
        '/api/v1/sync/runs/{id}',
        '/api/v1/files',
        '/api/v1/download/{path}',
        '/api/v1/stats',
        '/api/v1/config',
        '/api/v1/health',
      ]) {
        expect(paths).toContain(p);
      }
      expect(res.body.components.schemas.SyncRunResponseDto.properties.sync_details).toBeDefined();
      expect(res.body.components.securitySchemes['api-key']).toMatchObject({ type: 'apiKey', name: 'x-api-key' });
    });

    it('serves the Swagger UI', async () => {
      const res = await t.http().get('/docs').expect(200);
      expect(res.text).toContain('swagger-ui');
    });
  });
});

describe('the service process (dist/main.js)', () => {
  const main = join(__dirname, '..', 'dist', 'main.js');

  function run(
    env: Record<string, string>,
    onReady?: (port: number) => Promise<void>,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [main], {
        env: { PATH: process.env.PATH ?? '', HOME: tempDir('home'), ...env },
        cwd: tempDir('cwd'),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (onReady && stdout.includes('listening on')) {
          const port = Number(env.API_PORT);
          const ready = onReady;
          onReady = undefined;
          ready(port).then(
            () => child.kill('SIGTERM'),
            (err: unknown) => {
              child.kill('SIGKILL');
              reject(err);
            },
          );
        }
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code, signal) => resolve({ code, signal, stderr, stdout }));
    });
  }

  beforeAll(() => {
    if (!existsSync(main)) throw new Error('dist/main.js is missing: `npm test` builds it first (npm run build)');
  });

  it('stops with the variable name and the reason when the configuration is bad', async () => {
    const { code, stderr } = await run({ S3_BUCKET_NAME: 'ok-bucket', API_PORT: 'not-a-port', SYNC_CRON: 'whenever' });
    expect(code).toBe(78);
    expect(stderr).toMatch(/API_PORT: /);
    expect(stderr).toMatch(/SYNC_CRON: must be a valid cron expression/);
  });

  it('stops when the bucket name is missing', async () => {
    const { code, stderr } = await run({});
    expect(code).toBe(78);
    expect(stderr).toMatch(/S3_BUCKET_NAME: /);
  });

  it('starts, answers, logs JSON with a request id and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const s3 = testS3();
    const bucket = await newBucket(s3);
    s3.destroy();
    const { code, stdout } = await run(
      {
        S3_BUCKET_NAME: bucket,
        S3_ENDPOINT: emulatorEndpoint(),
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        API_PORT: String(port),
        API_HOST: '127.0.0.1',
        LOCAL_DOWNLOAD_DIR: join(tempDir('proc'), 'mirror'),
        STATE_DIR: tempDir('proc-state'),
        API_KEY,
      },
      async (p) => {
        const res = await fetch(`http://127.0.0.1:${p}/api/v1/config`, { headers: { 'x-api-key': API_KEY } });
        expect(res.status).toBe(200);
      },
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/"msg":"stopped: running syncs aborted and recorded"/);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const request = lines.find((l) => (l.req as { url?: string } | undefined)?.url === '/api/v1/config');
    expect(request).toMatchObject({ req: { id: expect.any(String), headers: expect.objectContaining({ 'x-api-key': '[redacted]' }) } });
    expect(stdout).not.toContain(API_KEY);
  });
});

describe('request limits and browsers', () => {
  let s3: S3Client;
  let bucket: string;
  const apps: TestApp[] = [];
  const boot = async (env: Record<string, string>): Promise<TestApp> => {
    const app = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), ...env });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    s3.destroy();
  });

  it('answers 429 with Retry-After past RATE_LIMIT_PER_SECOND per client, webhook included, health never', async () => {
    const t = await boot({ RATE_LIMIT_PER_SECOND: '3', WEBHOOK_SECRET: 'a-webhook-secret-for-limits' });
    const statuses = async (path: string, method: 'get' | 'post' = 'get'): Promise<number[]> => {
      const answers = await Promise.all(Array.from({ length: 12 }, () => t.http()[method](path)));
      const limited = answers.find((r) => r.status === 429);
      if (limited) {
        expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(limited.body.message).toMatch(/the limit is 3 per second per client \(RATE_LIMIT_PER_SECOND\)/);
      }
      return answers.map((r) => r.status);
    };
    const stats = await statuses('/api/v1/stats');
    expect(stats.filter((s) => s === 429).length).toBeGreaterThanOrEqual(9);
    // The webhook is limited before its signature is even checked.
    const webhook = await statuses('/api/v1/s3-notification', 'post');
    expect(webhook.filter((s) => s === 429).length).toBeGreaterThanOrEqual(9);
    expect(webhook.filter((s) => s !== 429).every((s) => s === 401)).toBe(true);
    const health = await statuses('/api/v1/health');
    expect(health.filter((s) => s === 429)).toEqual([]);
  });

  it('RATE_LIMIT_PER_SECOND=0 turns the limit off', async () => {
    const t = await boot({ RATE_LIMIT_PER_SECOND: '0' });
    const answers = await Promise.all(Array.from({ length: 50 }, () => t.http().get('/api/v1/stats')));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
  });

  it('answers CORS preflights for CORS_ORIGINS only, and sends no CORS headers without it', async () => {
    const t = await boot({ CORS_ORIGINS: 'https://ui.example.com, http://localhost:5173' });
    const preflight = (origin: string, app = t) =>
      app
        .http()
        .options('/api/v1/sync')
        .set('origin', origin)
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'x-api-key');
    const allowed = await preflight('https://ui.example.com').expect(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://ui.example.com');
    expect(allowed.headers['access-control-allow-headers']).toContain('x-api-key');
    const simple = await t.http().get('/api/v1/stats').set('origin', 'http://localhost:5173').expect(200);
    expect(simple.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    const other = await preflight('https://evil.example.com');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();

    const closed = await boot({});
    const none = await preflight('https://ui.example.com', closed);
    expect(none.headers['access-control-allow-origin']).toBeUndefined();
  });
});
