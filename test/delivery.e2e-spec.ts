import { S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bootApp, eventually, TestApp, tempDir } from './support/app';
import { jsonl, serviceEnv } from './support/delivery';
import { FakeDownstream } from './support/fake-downstream';
import { ManualClock } from './support/manual-clock';
import { S3Proxy } from './support/s3-proxy';
import { startService } from './support/process';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

interface FileStatus {
  fileId: string;
  status: string;
  recordsSent: number;
  recordsFailed: number;
  recordsParsed: number;
  batchesAcknowledged: number;
}

describe('delivery of records downstream', () => {
  let s3: S3Client;
  let bucket: string;
  let down: FakeDownstream;
  let t: TestApp;

  const boot = async (env: Record<string, string> = {}, clock?: ManualClock) => {
    t = await bootApp(
      {
        S3_BUCKET_NAME: bucket,
        S3_ENDPOINT: emulatorEndpoint(),
        CALL_DETAILS_URL: down.recordsUrl,
        AUTH_URL: down.authUrl,
        ACCESS_KEY: down.accessKey,
        SECRET_KEY: down.secretKey,
        RETRY_BASE_MS: '10',
        RETRY_MAX_MS: '200',
        DELIVERY_PATTERNS: '**/*.jsonl,**/*.jsonl.gz,**/*.txt',
        ...env,
      },
      { clock },
    );
  };
  const sync = async () => (await t.http().post('/api/v1/sync').expect(200)).body as { status: string };
  const statusOf = async (key: string): Promise<FileStatus | undefined> => {
    const res = await t.http().get(`/api/v1/files/${key.split('/').map(encodeURIComponent).join('/')}/status`);
    return res.status === 200 ? (res.body as FileStatus) : undefined;
  };
  const finished = async (key: string, timeoutMs = 20_000): Promise<FileStatus> =>
    (await eventually(
      () => statusOf(key),
      (s) => s !== undefined && ['delivered', 'dead', 'failed'].includes(s.status),
      timeoutMs,
      `${key} delivered`,
    ))!;

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    down = await new FakeDownstream().start();
  });
  afterEach(async () => {
    await t?.close();
    await down.stop();
    s3.destroy();
  });

  it('delivers every record in batches of 500 with one login, stable Idempotency-Keys and the ledger', async () => {
    await boot();
    await put(s3, bucket, 'logs/a.jsonl', jsonl(0, 2600, 'a'));
    await put(s3, bucket, 'logs/b.jsonl', jsonl(0, 1200, 'b'));
    await put(s3, bucket, 'images/c.png', 'not records');
    await sync();
    const a = await finished('logs/a.jsonl');
    const b = await finished('logs/b.jsonl');
    expect(a).toMatchObject({ status: 'delivered', recordsParsed: 2600, recordsSent: 2600, recordsFailed: 0, batchesAcknowledged: 6 });
    expect(b).toMatchObject({ status: 'delivered', recordsSent: 1200, batchesAcknowledged: 3 });
    expect(down.logins).toBe(1);
    const keysA = [...down.batches.keys()].filter((k) => k.startsWith(a.fileId)).sort();
    expect(keysA).toEqual([0, 1, 2, 3, 4, 5].map((n) => `${a.fileId}#${n}`).sort());
    const first = down.batches.get(`${a.fileId}#0`)!;
    expect(first.batchSize).toBe(500);
    expect(first.records[0]).toEqual({ id: 'a-0', n: 0 });
    expect(new Date(first.timestamp).toISOString()).toBe(first.timestamp);
    expect(down.delivered()).toHaveLength(3800);
    expect(await statusOf('images/c.png')).toBeUndefined();
    const byId = await t.http().get('/api/v1/status').query({ fileId: a.fileId }).expect(200);
    expect(byId.body).toMatchObject({ fileId: a.fileId, status: 'delivered', timestamp: expect.any(String) });
    await t
      .http()
      .get('/api/v1/status')
      .query({ fileId: `${bucket}/nope@x` })
      .expect(404);
    const config = await t.http().get('/api/v1/config').expect(200);
    expect(config.body.delivery).toMatchObject({ url: down.recordsUrl, accessKey: '[redacted]', secretKey: '[redacted]' });
    expect(config.text).not.toContain(down.secretKey);
    expect(config.text).not.toContain(down.accessKey);
  });

  it('logs in once more after a 401 and retries the batch with the new token', async () => {
    await boot();
    await put(s3, bucket, 'one.jsonl', jsonl(0, 10));
    await sync();
    await finished('one.jsonl');
    down.revokeTokens();
    await put(s3, bucket, 'two.jsonl', jsonl(10, 1500));
    await sync();
    expect(await finished('two.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 1490 });
    expect(down.logins).toBe(2);
    expect(down.requests.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(1);
  });

  it('waits while the login refuses the credentials: not retried as an outage, no breaker, no dead letter; delivers once they are accepted', async () => {
    const clock = new ManualClock();
    // Without the wait, a batch that cannot be sent would be a dead letter at once.
    await boot({ BREAKER_FAILURE_THRESHOLD: '1', DEAD_LETTER_AFTER_MINUTES: '0', RETRY_MAX_MS: '200' }, clock);
    const accepted = down.secretKey;
    down.secretKey = 'a-rotated-secret-the-service-does-not-have';
    await put(s3, bucket, 'refused.jsonl', jsonl(0, 300));
    await sync();
    const waiting = () =>
      eventually(
        () => clock.waiting,
        (n) => n === 1,
        10_000,
        'the batch waiting for the credentials',
      );
    await waiting();
    expect(down.logins).toBe(1);
    // One login per RETRY_MAX_MS while refused, each one refused again; nothing reaches the records endpoint.
    for (let i = 0; i < 3; i++) {
      clock.advance(200);
      await eventually(
        () => down.logins,
        (n) => n === 2 + i,
        10_000,
        'the next login',
      );
      await waiting();
    }
    expect(down.requests).toEqual([]);
    expect((await t.http().get('/api/v1/dead-letters').expect(200)).body.total).toBe(0);
    const stats = (await t.http().get('/api/v1/stats').expect(200)).body as { delivery: { breakers: Array<{ state: string }> } };
    expect(stats.delivery.breakers.every((b) => b.state === 'closed')).toBe(true);
    expect((await t.http().get('/metrics').expect(200)).text).toMatch(/^s3sync_delivery_logins_total\{outcome="refused"\} 4$/m);
    expect((await statusOf('refused.jsonl'))?.status).not.toMatch(/delivered|dead|failed/);

    down.secretKey = accepted;
    clock.advance(200);
    expect(await finished('refused.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 300, recordsFailed: 0 });
    expect(down.logins).toBe(5);
  });

  it('retries 5xx and 429 (Retry-After), dead-letters a 400 batch, and redrives it', async () => {
    await boot({ MAX_RECORDS_PER_BATCH: '100', DELIVERY_CONCURRENCY: '1', RETRY_MAX_MS: '5000' });
    down.faults.push({ status: 500 }, { status: 429, retryAfter: '1' }, { status: 400 });
    await put(s3, bucket, 'f.jsonl', jsonl(0, 300));
    const started = Date.now();
    await sync();
    const s = await finished('f.jsonl');
    expect(s).toMatchObject({ status: 'dead', recordsSent: 200, recordsFailed: 100, batchesAcknowledged: 3 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // the Retry-After was honoured
    const dead = (await t.http().get('/api/v1/dead-letters').expect(200)).body as {
      total: number;
      letters: Array<Record<string, unknown>>;
    };
    expect(dead.total).toBe(1);
    expect(dead.letters[0]).toMatchObject({
      kind: 'batch',
      fileId: s.fileId,
      batchNo: 0,
      reason: expect.stringContaining('400'),
      firstLine: 1,
      lastLine: 100,
    });
    expect(down.delivered()).toHaveLength(200);

    const redrive = await t.http().post('/api/v1/dead-letters/redrive').expect(200);
    expect(redrive.body).toEqual({ redriven: 1, failed: 0 });
    expect(down.delivered()).toHaveLength(300);
    expect(down.batches.get(`${s.fileId}#0`)?.records[0]).toEqual({ id: 'r-0', n: 0 });
    expect((await t.http().get('/api/v1/dead-letters').expect(200)).body.letters[0].redrivenAt).toEqual(expect.any(String));
    // The file's ledger follows: every batch went, so the file is delivered.
    expect(await statusOf('f.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 300, recordsFailed: 0 });
    await t.http().post('/api/v1/dead-letters/redrive').expect(200, { redriven: 0, failed: 0 });
  });

  it('times out a request that gets no answer and sends the batch again', async () => {
    await boot({ DELIVERY_TIMEOUT_SECONDS: '1', DELIVERY_CONCURRENCY: '1' });
    down.faults.push({ hang: true }, { delayMs: 300 });
    await put(s3, bucket, 'slow.jsonl', jsonl(0, 10));
    await sync();
    expect(await finished('slow.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 10 });
    expect(down.requests.filter((r) => r.status === 0)).toHaveLength(1); // the one left hanging
    expect(down.delivered()).toHaveLength(10);
  });

  it('sends dead letters to SQS as well when DLQ_URL is set', async () => {
    const sqs = new SQSClient({
      endpoint: emulatorEndpoint(),
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `delivery-dlq-${Date.now()}` }))).QueueUrl!;
    try {
      await boot({ DLQ_URL: dlq, SQS_ENDPOINT: emulatorEndpoint() });
      down.faults.push({ status: 422 });
      await put(s3, bucket, 'refused.jsonl', jsonl(0, 4));
      await sync();
      const s = await finished('refused.jsonl');
      expect(s.status).toBe('dead');
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlq, MessageAttributeNames: ['All'], WaitTimeSeconds: 2 }),
      );
      expect(Messages).toHaveLength(1);
      expect(Messages[0].MessageAttributes?.reason?.StringValue).toContain('422');
      expect(JSON.parse(Messages[0].Body!)).toMatchObject({
        kind: 'batch',
        fileId: s.fileId,
        batchNo: 0,
        payload: expect.stringContaining('"r-3"'),
      });
    } finally {
      sqs.destroy();
    }
  });

  it('turns invalid JSON lines into dead letters with their line numbers and delivers the rest', async () => {
    await boot();
    const lines = jsonl(0, 5).trim().split('\n');
    lines.splice(2, 0, '{"broken": ');
    lines.push('not json at all');
    await put(s3, bucket, 'mixed.jsonl', lines.join('\n'));
    await sync();
    expect(await finished('mixed.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 5, recordsFailed: 2 });
    const dead = (await t.http().get('/api/v1/dead-letters').expect(200)).body as {
      letters: Array<{ kind: string; line: number; payload: string }>;
    };
    expect(dead.letters.map((l) => [l.kind, l.line, l.payload])).toEqual([
      ['record', 3, '{"broken":'],
      ['record', 7, 'not json at all'],
    ]);
    expect(down.delivered()).toEqual(
      jsonl(0, 5)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    );
  });

  it('reads gzip-compressed JSON Lines and plain text', async () => {
    await boot();
    await put(s3, bucket, 'z/data.jsonl.gz', gzipSync(jsonl(0, 700)));
    await put(s3, bucket, 'z/notes.txt', 'first line\n\nsecond "quoted" line\nété\n');
    await sync();
    expect(await finished('z/data.jsonl.gz')).toMatchObject({ status: 'delivered', recordsSent: 700 });
    expect(await finished('z/notes.txt')).toMatchObject({ status: 'delivered', recordsSent: 3 });
    expect(down.delivered()).toEqual(expect.arrayContaining(['first line', 'second "quoted" line', 'été', { id: 'r-699', n: 699 }]));
  });

  it('opens the breaker in an outage, sends nothing during the cooldown, probes once, then delivers everything', async () => {
    const clock = new ManualClock();
    await boot(
      {
        MAX_RECORDS_PER_BATCH: '50',
        DELIVERY_CONCURRENCY: '4',
        MAX_RETRIES: '20',
        BREAKER_FAILURE_THRESHOLD: '2',
        BREAKER_COOLDOWN_SECONDS: '60',
      },
      clock,
    );
    await put(s3, bucket, 'out.jsonl', jsonl(0, 1000));
    down.outageUntil = Number.MAX_SAFE_INTEGER;
    await sync();
    // While the breaker is open the service is degraded, not down: readiness still answers 200.
    const health = await eventually(
      async () =>
        (await t.http().get('/api/v1/health')).body as { status: string; checks: { info: { downstream: { condition: string } } } },
      (h) => h.checks?.info?.downstream?.condition === 'degraded',
      10_000,
      'degraded health',
    );
    expect(health.status).toBe('healthy');
    // Every request slot now waits for the cooldown on the service's clock: nothing can be sent.
    await eventually(
      () => clock.waiting,
      (n) => n === 4,
      10_000,
      'all four request slots waiting for the breaker',
    );
    const failures = down.requests.filter((r) => r.status === 503);
    // Before it opens: the 4 in flight, plus a retry admitted while only one failure was counted.
    expect(failures.length).toBeLessThanOrEqual(4 + 2 - 1);
    const sentBeforeCooldownEnd = down.requests.length;
    down.outageUntil = 0;

    clock.advance(60_000);
    // One caller wins the half-open probe and, once it closes the breaker, goes on sending; the
    // other three saw the probe taken and wait for their next look at the breaker.
    await eventually(
      () => down.requests.length,
      (n) => n > sentBeforeCooldownEnd,
      10_000,
      'the probe',
    );
    expect(down.requests[sentBeforeCooldownEnd].status).toBe(200);
    expect(clock.waiting).toBe(3);
    clock.advance(1_000);

    const s = await finished('out.jsonl', 30_000);
    expect(s).toMatchObject({ status: 'delivered', recordsSent: 1000, recordsFailed: 0 });
    expect(down.delivered()).toHaveLength(1000);
    expect(down.duplicates()).toBe(0);
    expect(down.requests.slice(sentBeforeCooldownEnd).every((r) => r.status === 200)).toBe(true);
    const stats = (await t.http().get('/api/v1/stats').expect(200)).body as { delivery: { breakers: Array<{ state: string }> } };
    expect(stats.delivery.breakers).toEqual([expect.objectContaining({ state: 'closed' })]);
  });

  it('waits out an outage longer than its retries instead of dead-lettering: every record arrives, no redrive', async () => {
    await boot({
      MAX_RECORDS_PER_BATCH: '100',
      DELIVERY_CONCURRENCY: '2',
      MAX_RETRIES: '1',
      BREAKER_FAILURE_THRESHOLD: '2',
      BREAKER_COOLDOWN_SECONDS: '0.5',
      RETRY_MAX_MS: '100',
    });
    await put(s3, bucket, 'outage.jsonl', jsonl(0, 500));
    down.outageUntil = Number.MAX_SAFE_INTEGER;
    await sync();
    // Several rounds of retries fail while the downstream is down.
    await eventually(
      () => down.requests.filter((r) => r.status === 503).length,
      (n) => n >= 6,
      10_000,
      'retries exhausted more than once',
    );
    down.outageUntil = 0;
    expect(await finished('outage.jsonl', 20_000)).toMatchObject({ status: 'delivered', recordsSent: 500, recordsFailed: 0 });
    expect(down.delivered()).toHaveLength(500);
    expect((await t.http().get('/api/v1/dead-letters').expect(200)).body.total).toBe(0);
  });

  it('reprocesses a file from the start on request', async () => {
    await boot();
    await put(s3, bucket, 'again.jsonl', jsonl(0, 20));
    await sync();
    const s = await finished('again.jsonl');
    await t.http().post('/api/v1/files/again.jsonl/reprocess').expect(202);
    await eventually(
      () => down.batches.get(`${s.fileId}#0`)?.deliveries ?? 0,
      (n) => n === 2,
      10_000,
      'second delivery',
    );
    expect(await finished('again.jsonl')).toMatchObject({ status: 'delivered', attempts: 2 });
    await t.http().post('/api/v1/files/no-such.jsonl/reprocess').expect(404);
  });

  it('delivers at start-up files committed without a delivery record (a crash between commit and ledger)', async () => {
    const stateDir = tempDir('reconcile-state');
    const mirrorDir = join(tempDir('reconcile'), 'mirror');
    await put(s3, bucket, 'before.jsonl', jsonl(0, 3));
    // Delivery enabled once: files already mirrored before that moment are not delivered.
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), STATE_DIR: stateDir, LOCAL_DOWNLOAD_DIR: mirrorDir });
    await sync();
    await t.close();
    await boot({ STATE_DIR: stateDir, LOCAL_DOWNLOAD_DIR: mirrorDir });
    await t.close();
    // Committed by a process that never wrote the ledger entry.
    await put(s3, bucket, 'orphan.jsonl', jsonl(0, 7));
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), STATE_DIR: stateDir, LOCAL_DOWNLOAD_DIR: mirrorDir });
    await sync();
    await t.close();
    await boot({ STATE_DIR: stateDir, LOCAL_DOWNLOAD_DIR: mirrorDir });
    expect(await finished('orphan.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 7 });
    expect(await statusOf('before.jsonl')).toBeUndefined();
    expect(down.delivered()).toHaveLength(7);
  });

  it('shows a version as pending while it downloads, failed when it cannot be mirrored, then delivers it once it is', async () => {
    const proxy = new S3Proxy(emulatorEndpoint());
    try {
      await boot({ S3_ENDPOINT: await proxy.start(), RETRY_ATTEMPTS: '1' });
      await put(s3, bucket, 'in/slow.jsonl', jsonl(0, 4));
      await put(s3, bucket, 'in/broken.jsonl', jsonl(10, 13));
      proxy.stall.set('in/slow.jsonl', 1);
      proxy.stallMs = 2000;
      proxy.fail.set('in/broken.jsonl', 100);
      await t.http().post('/api/v1/sync?background=true').expect(202);
      const pending = await eventually(
        () => statusOf('in/slow.jsonl'),
        (s) => s !== undefined,
        5000,
        'slow.jsonl recorded',
      );
      expect(pending).toMatchObject({ status: 'pending', recordsSent: 0 });
      expect(await finished('in/slow.jsonl')).toMatchObject({ status: 'delivered', recordsSent: 4 });
      const broken = await finished('in/broken.jsonl');
      expect(broken).toMatchObject({ status: 'failed', recordsSent: 0 });
      expect((broken as FileStatus & { lastError: string }).lastError).toMatch(/^not mirrored: .*InternalError: injected failure/);
      proxy.fail.clear();
      await sync();
      await eventually(
        () => statusOf('in/broken.jsonl'),
        (s) => s?.status === 'delivered',
        10_000,
        'broken.jsonl delivered',
      );
      expect(
        down
          .delivered()
          .map((r) => (r as { id: string }).id)
          .sort(),
      ).toEqual(['r-0', 'r-1', 'r-10', 'r-11', 'r-12', 'r-2', 'r-3']);
      const stats = (await t.http().get('/api/v1/stats').expect(200)).body as { delivery: { files: Record<string, number> } };
      expect(stats.delivery.files).toEqual({ delivered: 2 });
    } finally {
      await t?.close();
      await proxy.stop();
    }
  });

  it('is a pure mirror when no downstream is configured', async () => {
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint() });
    await put(s3, bucket, 'quiet.jsonl', jsonl(0, 5));
    await sync();
    // Committed (the mirror publishes the commit before the run ends) and nobody listens for it.
    await t.http().get('/api/v1/download/quiet.jsonl').expect(200);
    const stats = await t.http().get('/api/v1/stats').expect(200);
    expect(stats.body.delivery).toMatchObject({ enabled: false, files: {} });
    await t.http().get('/api/v1/files/quiet.jsonl/status').expect(404);
    expect(down.requests).toHaveLength(0);
  });
});

describe('delivery survives a crash', () => {
  it('resumes a file at its checkpoint after kill -9, losing nothing', async () => {
    const s3 = testS3();
    const bucket = await newBucket(s3);
    const down = await new FakeDownstream().start();
    down.latencyMs = 25;
    await put(s3, bucket, 'big.jsonl', jsonl(0, 6000));
    const env = { ...serviceEnv(bucket, down, 'dcrash'), MAX_RECORDS_PER_BATCH: '100', DELIVERY_CONCURRENCY: '2' };
    const first = await startService(env);
    try {
      await eventually(
        () => down.batches.size,
        (n) => n >= 15,
        20_000,
        'some batches acknowledged',
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${first.output().slice(-3000)}`);
      });
      first.child.kill('SIGKILL');
      await first.exited;
      const acknowledgedBefore = down.batches.size;
      expect(acknowledgedBefore).toBeLessThan(60);

      down.latencyMs = 0;
      const second = await startService({ ...env, SYNC_ON_START: 'false' });
      try {
        await eventually(
          () => down.batches.size,
          (n) => n === 60,
          20_000,
          'every batch delivered',
        );
        expect(down.delivered()).toHaveLength(6000);
        // Resumed at the checkpoint: the first batches were not sent again.
        expect(down.batches.get([...down.batches.keys()].find((k) => k.endsWith('#0'))!)!.deliveries).toBe(1);
        expect(down.duplicates()).toBeLessThanOrEqual(2); // at most the requests in flight at the kill
        const fileId = [...down.batches.keys()][0].split('#')[0];
        await eventually(
          async () =>
            ((await (await fetch(`${second.url}/api/v1/status?fileId=${encodeURIComponent(fileId)}`)).json()) as { status: string }).status,
          (st) => st === 'delivered',
          10_000,
          'ledger says delivered',
        );
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
      await down.stop();
      s3.destroy();
    }
  });
});
