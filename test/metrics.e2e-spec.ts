import { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { bootApp, eventually, TestApp } from './support/app';
import { jsonl } from './support/delivery';
import { FakeDownstream } from './support/fake-downstream';
import { mirrorServiceEnv, startService } from './support/process';
import { parsePrometheus, Sample, sampleValue } from './support/prometheus';
import { notification, signedPost } from './support/s3-events';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

const API_KEY = 'metrics-e2e-api-key-0123';
const SECRET = 'metrics-e2e-webhook-secret';

describe('GET /metrics (Prometheus)', () => {
  let s3: S3Client;
  let bucket: string;
  let down: FakeDownstream;
  let t: TestApp;

  beforeAll(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    down = await new FakeDownstream().start();
    t = await bootApp({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: emulatorEndpoint(),
      API_KEY,
      WEBHOOK_SECRET: SECRET,
      CALL_DETAILS_URL: down.recordsUrl,
      AUTH_URL: down.authUrl,
      ACCESS_KEY: down.accessKey,
      SECRET_KEY: down.secretKey,
      DELIVERY_PATTERNS: '**/*.jsonl',
      MAX_RECORDS_PER_BATCH: '100',
      RETRY_BASE_MS: '5',
      RETRY_MAX_MS: '20',
      MAX_RETRIES: '1',
      BREAKER_FAILURE_THRESHOLD: '2',
      BREAKER_COOLDOWN_SECONDS: '600',
    });
  });
  afterAll(async () => {
    await t.close();
    await down.stop();
    s3.destroy();
  });

  const scrape = async (): Promise<Sample[]> => {
    const res = await t.http().get('/metrics').set('x-api-key', API_KEY).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(res.text);
  };

  it('needs the API key when one is set', async () => {
    await t.http().get('/metrics').expect(401);
  });

  it('has the process metrics and every figure of the service at zero before any work', async () => {
    const m = await scrape();
    expect(sampleValue(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(m.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
    expect(sampleValue(m, 's3sync_sync_runs_total')).toBe(0);
    expect(sampleValue(m, 's3sync_events_inbox', { status: 'pending' })).toBe(0);
  });

  it('moves with a sync, an event and a delivery, and shows the breaker open in an outage', async () => {
    await put(s3, bucket, 'in/a.jsonl', jsonl(0, 250, 'a'));
    await put(s3, bucket, 'in/skip.bin', 'not records, and not delivered');
    await t.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
    await eventually(
      () => down.delivered().length,
      (n) => n === 250,
      15_000,
      'the synced file delivered',
    );
    let m = await scrape();
    expect(sampleValue(m, 's3sync_sync_runs_total', { status: 'completed' })).toBe(1);
    expect(sampleValue(m, 's3sync_sync_objects_total', { result: 'downloaded' })).toBe(2);
    expect(sampleValue(m, 's3sync_sync_downloaded_bytes_total')).toBeGreaterThan(0);
    expect(sampleValue(m, 's3sync_sync_run_duration_seconds_count')).toBe(1);
    expect(sampleValue(m, 's3sync_delivery_records_total', { outcome: 'sent' })).toBe(250);
    expect(sampleValue(m, 's3sync_delivery_records_total', { outcome: 'parsed' })).toBe(250);
    expect(sampleValue(m, 's3sync_delivery_batches_total', { outcome: 'sent' })).toBe(3);
    expect(sampleValue(m, 's3sync_delivery_logins_total', { outcome: 'ok' })).toBe(1);
    expect(sampleValue(m, 's3sync_delivery_request_duration_seconds_count', { target: 'records', outcome: '2xx' })).toBe(3);
    expect(sampleValue(m, 's3sync_delivery_files', { status: 'delivered' })).toBe(1);
    expect(sampleValue(m, 's3sync_circuit_breaker_open')).toBe(0);

    // An event through the webhook: accepted, applied, its latency observed.
    const body = 'a line of text\n';
    await put(s3, bucket, 'in/b.txt', body);
    await signedPost(
      t,
      SECRET,
      notification({ bucket, key: 'in/b.txt', op: 'put', size: body.length, etag: createHash('md5').update(body).digest('hex') }),
    ).expect(202);
    m = await eventually(
      scrape,
      (s) => sampleValue(s, 's3sync_events_applied_total', { source: 'webhook', result: 'downloaded' }) === 1,
      10_000,
      'the event applied',
    );
    expect(sampleValue(m, 's3sync_events_total', { source: 'webhook', outcome: 'accepted' })).toBe(1);
    expect(sampleValue(m, 's3sync_event_commit_latency_seconds_count', { source: 'webhook' })).toBe(1);
    // The same counters are what /api/v1/stats shows.
    const stats = (await t.http().get('/api/v1/stats').set('x-api-key', API_KEY).expect(200)).body as {
      events: { accepted: number; applied: { downloaded: number }; latencyMs: { samples: number } };
    };
    expect(stats.events).toMatchObject({ accepted: 1, applied: expect.objectContaining({ downloaded: 1 }), latencyMs: { samples: 1 } });

    // A batch the downstream refuses (400) is a dead letter at once, its records counted as such.
    down.faults.push({ status: 400 });
    await put(s3, bucket, 'in/refused.jsonl', jsonl(0, 60, 'r'));
    await t.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
    m = await eventually(
      scrape,
      (s) => sampleValue(s, 's3sync_delivery_records_total', { outcome: 'dead_lettered' }) === 60,
      10_000,
      'the refused batch dead-lettered',
    );
    expect(sampleValue(m, 's3sync_delivery_batches_total', { outcome: 'dead_lettered' })).toBe(1);
    expect(sampleValue(m, 's3sync_delivery_request_duration_seconds_count', { target: 'records', outcome: '4xx' })).toBe(1);

    // An outage: the requests fail and are retried, and the breaker opens.
    down.outageUntil = Number.MAX_SAFE_INTEGER;
    await put(s3, bucket, 'in/c.jsonl', jsonl(0, 150, 'c'));
    await t.http().post('/api/v1/sync').set('x-api-key', API_KEY).expect(200);
    m = await eventually(
      scrape,
      (s) => sampleValue(s, 's3sync_circuit_breaker_open', { endpoint: down.recordsUrl }) === 1,
      10_000,
      'the breaker open',
    );
    expect(sampleValue(m, 's3sync_delivery_retries_total', { target: 'records' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 's3sync_delivery_request_duration_seconds_count', { target: 'records', outcome: '5xx' })).toBeGreaterThanOrEqual(
      2,
    );
    expect(sampleValue(m, 's3sync_sync_runs_total', { status: 'completed' })).toBe(3);
  });
});

describe('METRICS_EMF=true (the built service)', () => {
  it('writes CloudWatch EMF lines to stdout on its interval, the sync counted', async () => {
    const s3 = testS3();
    const bucket = await newBucket(s3);
    await put(s3, bucket, 'a.txt', 'a');
    const service = await startService({
      ...mirrorServiceEnv(bucket, 'emf'),
      METRICS_EMF: 'true',
      METRICS_EMF_INTERVAL_SECONDS: '1',
    });
    try {
      await fetch(`${service.url}/api/v1/sync`, { method: 'POST' });
      const emf = (): Array<Record<string, unknown>> =>
        service
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{"_aws"'))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const docs = await eventually(emf, (d) => d.some((x) => x.SyncRuns === 1), 10_000, 'an EMF line with the sync run');
      expect(docs.find((x) => x.SyncRuns === 1)).toMatchObject({
        status: 'completed',
        _aws: {
          CloudWatchMetrics: [{ Namespace: 'S3SyncService', Dimensions: [['status']], Metrics: [{ Name: 'SyncRuns', Unit: 'Count' }] }],
        },
      });
      expect(docs.some((x) => x.SyncObjects === 1 && x.result === 'downloaded')).toBe(true);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
      s3.destroy();
    }
  });
});
