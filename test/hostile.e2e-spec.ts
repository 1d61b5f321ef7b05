import { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signWebhook } from '../src/auth/webhook-signature';
import { bootApp, eventually, filesUnder, TestApp, tempDir } from './support/app';
import { mirrorServiceEnv, startService } from './support/process';
import { eventBridge, EventSpec, notification, sequencers, signedPost } from './support/s3-events';
import { emulatorEndpoint, newBucket, put, remove, testS3 } from './support/s3';

const SECRET = 'hostile-e2e-webhook-secret';
const API_KEY = 'hostile-e2e-api-key-0123';
/** A plain file, where a configuration names a folder under it. */
const A_FILE = join(tempDir('a-file'), 'plain.txt');
writeFileSync(A_FILE, 'not a folder');
const md5 = (b: string): string => createHash('md5').update(b).digest('hex');

/**
 * What a hostile sender, a bucket writer or a bad configuration may try, through the real service:
 * each case must change nothing it should not, serve nothing it should not, and lose nothing.
 */
describe('hostile inputs', () => {
  const s3: S3Client = testS3();
  let bucket: string;
  let t: TestApp;
  let outside: string;
  let tried = 0;

  beforeAll(async () => {
    bucket = await newBucket(s3);
    outside = tempDir('outside');
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), WEBHOOK_SECRET: SECRET, API_KEY, S3_PREFIX: 'in/' });
  });
  afterAll(async () => {
    await t.close();
    s3.destroy();
    // Whatever was tried, nothing was written outside the mirror.
    expect(await filesUnder(outside)).toEqual(['secret.txt']);
    expect(tried).toBeGreaterThanOrEqual(10);
  });

  const post = (raw: string, headers = signWebhook(SECRET, raw, Date.now())) =>
    t.http().post('/api/v1/s3-notification').set('content-type', 'application/json').set(headers).send(raw);
  const settled = () =>
    eventually(
      async () => (await t.http().get('/api/v1/stats').set('x-api-key', API_KEY)).body.events as { pending: number; inFlight: number },
      (e) => e.pending === 0 && e.inFlight === 0,
      10_000,
      'events applied',
    );
  const putEvent = async (key: string, body: string, sequencer?: string): Promise<EventSpec> => {
    await put(s3, bucket, key, body);
    return { bucket, key, op: 'put', size: body.length, etag: md5(body), sequencer };
  };

  it('refuses a replayed signed request with 409, however many times it comes', async () => {
    const raw = JSON.stringify(notification(await putEvent('in/replayed.txt', 'once')));
    const headers = signWebhook(SECRET, raw, Date.now());
    await post(raw, headers).expect(202);
    for (let i = 0; i < 3; i++, tried++) {
      const res = await post(raw, headers).expect(409);
      expect(res.body.message).toMatch(/replayed webhook request/);
    }
    // Adding a junk signature beside the good one is the same request.
    tried++;
    await post(raw, { ...headers, 'x-s3sync-signature': `${headers['x-s3sync-signature']}, v1=${'0'.repeat(64)}` }).expect(409);
  });

  it('refuses a sequencer no S3 event has, so it cannot make every later event of its key stale', async () => {
    const [real] = sequencers(1);
    const poisoned = await putEvent('in/poison.txt', 'first', 'F'.repeat(200));
    tried++;
    const res = await post(JSON.stringify(notification(poisoned))).expect(202);
    expect(res.body).toMatchObject({ accepted: 0, rejected: 1 });
    await post(JSON.stringify(notification(await putEvent('in/poison.txt', 'the real one', real)))).expect(202);
    await settled();
    expect(await filesUnder(t.mirrorDir)).toContain('in/poison.txt');
  });

  it('treats a delete without a sequencer as older than the put that came with one', async () => {
    const [s1] = sequencers(1, 0x0066aed6dcd90281e5n);
    await post(JSON.stringify(notification(await putEvent('in/kept.txt', 'keep me', s1)))).expect(202);
    await settled();
    tried++;
    await post(JSON.stringify(notification({ bucket, key: 'in/kept.txt', op: 'delete' }))).expect(202);
    await settled();
    expect(await filesUnder(t.mirrorDir)).toContain('in/kept.txt');
  });

  it('keeps every file a signed body of deletes names while S3 still has the objects', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `in/still-there/${i}.txt`);
    const seqs = sequencers(20);
    for (const key of keys) await post(JSON.stringify(notification(await putEvent(key, `body of ${key}`)))).expect(202);
    await settled();
    tried++;
    const deletes = keys.map((key, i): EventSpec => ({ bucket, key, op: 'delete', sequencer: seqs[i] }));
    expect((await post(JSON.stringify(notification(...deletes))).expect(202)).body).toMatchObject({ accepted: 20 });
    await settled();
    const mirrored = await filesUnder(t.mirrorDir);
    expect(keys.filter((k) => !mirrored.includes(k))).toEqual([]);
    const applied = (await t.http().get('/api/v1/stats').set('x-api-key', API_KEY)).body.events.applied as {
      kept: number;
      deleted: number;
    };
    expect(applied).toMatchObject({ kept: 20, deleted: 0 });
    // A delete S3 disproved leaves no sequencer behind: the next real change of the key still applies.
    await remove(s3, bucket, keys[0]);
    await post(JSON.stringify(notification({ bucket, key: keys[0], op: 'delete', sequencer: sequencers(1, 1n)[0] }))).expect(202);
    await settled();
    expect(await filesUnder(t.mirrorDir)).not.toContain(keys[0]);
  });

  it('refuses at the door a key no file name can hold (a lone surrogate)', async () => {
    tried++;
    const res = await post(JSON.stringify(eventBridge({ bucket, key: 'in/bad-\uD800.txt', op: 'put', size: 1 }))).expect(202);
    expect(res.body).toMatchObject({ accepted: 0, rejected: 1 });
    const stats = (await t.http().get('/api/v1/stats').set('x-api-key', API_KEY)).body.events as {
      pending: number;
      parked: number;
      dead: number;
    };
    expect(stats).toMatchObject({ pending: 0, parked: 0, dead: 0 });
  });

  it('serves bucket pages and scripts as downloads in a sandbox, never as content of the API origin', async () => {
    await put(s3, bucket, 'in/web/page.html', '<script>fetch("/api/v1/config")</script>');
    await put(s3, bucket, 'in/web/app.js', 'alert(document.cookie)');
    await put(s3, bucket, 'in/web/notes.txt', 'plain');
    await t.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
    for (const key of ['in/web/page.html', 'in/web/app.js']) {
      tried++;
      const res = await t.http().get(`/api/v1/download/${key}`).set('x-api-key', API_KEY).expect(200);
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename=/);
      expect(res.headers['content-security-policy']).toMatch(/^sandbox;/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    const text = await t.http().get('/api/v1/download/in/web/notes.txt').set('x-api-key', API_KEY).expect(200);
    expect(text.headers['content-disposition']).toMatch(/^inline/);
  });

  it('does not serve a hard link planted in the mirror to a file outside it', async () => {
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret.txt'), 'not for the API');
    const mirrored = join(t.mirrorDir, 'in/web/notes.txt');
    rmSync(mirrored);
    linkSync(join(outside, 'secret.txt'), mirrored);
    tried++;
    const res = await t.http().get('/api/v1/download/in/web/notes.txt').set('x-api-key', API_KEY);
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('not for the API');
    rmSync(mirrored);
  });

  it('creates no folder outside the mirror through a folder symlink planted in it', async () => {
    mkdirSync(join(t.mirrorDir, 'in'), { recursive: true });
    symlinkSync(outside, join(t.mirrorDir, 'in', 'planted'));
    tried++;
    const res = await post(JSON.stringify(notification(await putEvent('in/planted/deep/er/x.txt', 'never outside')))).expect(202);
    expect(res.body).toMatchObject({ accepted: 1 });
    await settled();
    expect(existsSync(join(outside, 'deep'))).toBe(false);
    const dead = (await t.http().get('/api/v1/events/parked?status=dead').set('x-api-key', API_KEY)).body.events as Array<{
      key: string;
      lastError: string;
    }>;
    expect(dead.find((e) => e.key === 'in/planted/deep/er/x.txt')?.lastError).toMatch(/symlink/);
  });

  it('lists only what S3_PREFIX lets it mirror', async () => {
    await put(s3, bucket, 'private/payroll.csv', 'secret');
    tried++;
    const all = await t.http().get('/api/v1/files?source=s3&prefix=').set('x-api-key', API_KEY).expect(200);
    expect((all.body.files as Array<{ key: string }>).every((f) => f.key.startsWith('in/'))).toBe(true);
    tried++;
    await t.http().get('/api/v1/files?source=s3&prefix=private/').set('x-api-key', API_KEY).expect(400);
  });

  it('will not start with its state inside the mirror, where bucket objects would overwrite it', async () => {
    const mirror = join(tempDir('overlap'), 'mirror');
    tried++;
    const started = await startService({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: emulatorEndpoint(),
      LOCAL_DOWNLOAD_DIR: mirror,
      STATE_DIR: join(mirror, '.state'),
    }).catch((err: Error) => err);
    expect(String(started)).toContain('service exited during start (code 78');
    expect(String(started)).toContain('STATE_DIR, LOCAL_DOWNLOAD_DIR: the state may not be inside the mirror');
    expect(existsSync(join(mirror, '.state'))).toBe(false);
  });

  it.each([
    [{ LOCAL_DOWNLOAD_DIR: `${A_FILE}/mirror` }, `LOCAL_DOWNLOAD_DIR: ${A_FILE}/mirror cannot be a folder: ${A_FILE} is a file`],
    // A recursive mkdir under /proc never returns; one level at a time, it is refused at once.
    [{ LOCAL_DOWNLOAD_DIR: '/proc/no-such-process/mirror' }, 'LOCAL_DOWNLOAD_DIR: /proc/no-such-process cannot be created'],
    [{ STATE_DIR: '/sys/kernel/s3-sync-state' }, 'STATE_DIR: /sys/kernel/s3-sync-state cannot be created'],
    [{ API_HOST: 'no-such-host.invalid' }, 'API_HOST: no-such-host.invalid does not resolve to an address to listen on'],
    [{ MIN_FREE_DISK_MB: '999999999' }, 'MIN_FREE_DISK_MB: 999999999 MB is more than the whole disk of LOCAL_DOWNLOAD_DIR'],
    [{ AWS_CA_BUNDLE: '/no/such/ca.pem' }, 'AWS_CA_BUNDLE: /no/such/ca.pem cannot be read (ENOENT)'],
    [{ AWS_CA_BUNDLE: A_FILE }, `AWS_CA_BUNDLE: ${A_FILE} holds no PEM certificate`],
  ])('will not start where it cannot run, %j: exit 78 naming the setting', async (env, message) => {
    tried++;
    const started = await startService({ ...mirrorServiceEnv(bucket, 'preflight'), ...env }).catch((err: Error) => err);
    expect(String(started)).toContain('service exited during start (code 78');
    expect(String(started)).toContain(message);
    expect(String(started)).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('shows the bucket name, free space and check details on / and /health only to callers holding the key', async () => {
    tried++;
    const anonymous = JSON.stringify((await t.http().get('/api/v1/health').expect(200)).body);
    expect(anonymous).not.toContain(bucket);
    expect(anonymous).not.toContain('freeBytes');
    expect(JSON.parse(anonymous)).toMatchObject({
      status: 'healthy',
      s3_connection: true,
      checks: { details: { bucket: { status: 'up' } } },
    });
    const holder = JSON.stringify((await t.http().get('/api/v1/health').set('x-api-key', API_KEY).expect(200)).body);
    expect(holder).toContain(bucket);
    expect(holder).toContain('freeBytes');
    expect((await t.http().get('/').expect(200)).body.bucket).toBeUndefined();
    expect((await t.http().get('/').set('x-api-key', API_KEY).expect(200)).body.bucket).toBe(bucket);
    // A wrong key is no key.
    expect((await t.http().get('/').set('x-api-key', 'not-the-key-of-this-service').expect(200)).body.bucket).toBeUndefined();
  });

  it('warns at every start that the API is open when it listens beyond loopback without API_KEY', async () => {
    const stopped = async (env: Record<string, string>): Promise<string> => {
      const service = await startService({ ...mirrorServiceEnv(bucket, 'open-api'), ...env });
      service.child.kill('SIGTERM');
      await service.exited;
      return service.output();
    };
    expect(await stopped({ API_HOST: '0.0.0.0' })).toContain('the API is open: API_HOST is reachable from other machines');
    expect(await stopped({ API_HOST: '127.0.0.1' })).not.toContain('the API is open');
    expect(await stopped({ API_HOST: '0.0.0.0', API_KEY })).not.toContain('the API is open');
  });

  it('will not start with credentials in a URL, and does not echo them', async () => {
    tried++;
    const started = await startService({
      ...mirrorServiceEnv(bucket, 'url-credentials'),
      CALL_DETAILS_URL: 'https://api.example.com/calls',
      AUTH_URL: 'https://svc:hunter2-password@api.example.com/login',
      ACCESS_KEY: 'k',
      SECRET_KEY: 's',
    }).catch((err: Error) => err);
    expect(String(started)).toContain('service exited during start (code 78');
    expect(String(started)).toContain('AUTH_URL: credentials in the URL would travel into logs and error messages');
    expect(String(started)).not.toContain('hunter2-password');
  });

  describe('deletes from events beyond MAX_DELETE per EVENT_DELETE_WINDOW_SECONDS', () => {
    let bounded: TestApp;
    afterEach(() => bounded?.close());

    it('applies MAX_DELETE of them and holds the rest, listed with the reason, for an operator or a full sync', async () => {
      const own = await newBucket(s3);
      bounded = await bootApp({ S3_BUCKET_NAME: own, S3_ENDPOINT: emulatorEndpoint(), WEBHOOK_SECRET: SECRET, API_KEY, MAX_DELETE: '3' });
      const keys = Array.from({ length: 8 }, (_, i) => `gone/${i}.txt`);
      for (const key of keys) await put(s3, own, key, key);
      await bounded.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
      for (const key of keys.slice(0, 6)) await remove(s3, own, key);
      tried++;
      await signedPost(
        bounded,
        SECRET,
        notification(...keys.slice(0, 6).map((key): EventSpec => ({ bucket: own, key, op: 'delete' }))),
      ).expect(202);
      const held = await eventually(
        async () =>
          (await bounded.http().get('/api/v1/events/parked?status=dead').set('x-api-key', API_KEY)).body.events as Array<{
            key: string;
            lastError: string;
          }>,
        (events) => events.length === 3,
        10_000,
        'three deletes held',
      );
      expect(
        held.every((e) =>
          /held: more than MAX_DELETE \(3\) deletes from events within EVENT_DELETE_WINDOW_SECONDS \(3600\)/.test(e.lastError),
        ),
      ).toBe(true);
      const left = await filesUnder(bounded.mirrorDir);
      expect(left.filter((k) => keys.slice(0, 6).includes(k))).toHaveLength(3);
      expect(held.map((e) => e.key).sort()).toEqual(left.filter((k) => keys.slice(0, 6).includes(k)).sort());
      const metrics = (await bounded.http().get('/metrics').set('x-api-key', API_KEY).expect(200)).text;
      expect(metrics).toMatch(/^s3sync_event_deletes_held_total 3$/m);
      // The next full sync, under its own guard, brings the mirror to what the bucket holds.
      await bounded.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
      expect((await filesUnder(bounded.mirrorDir)).sort()).toEqual(keys.slice(6).sort());
    });
  });
});
