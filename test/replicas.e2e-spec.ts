import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { eventually, tempDir } from './support/app';
import { jsonl, serviceEnv } from './support/delivery';
import { FakeDownstream } from './support/fake-downstream';
import { MAIN, ServiceProcess, startService } from './support/process';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';
import { notification, sequencers } from './support/s3-events';

const FILES = 300;
const RECORDS_PER_FILE = 20;

/**
 * Three replicas of the built service, each with its own disk, on one SQS queue and one set of
 * DynamoDB tables (dynalite): SQS spreads the notifications, the shared claims decide who delivers
 * a file, and a replica that dies mid-file is taken over at the shared checkpoint.
 */
describe('replicas on one queue and shared DynamoDB state', () => {
  const s3 = testS3();
  const sqs = new SQSClient({
    endpoint: emulatorEndpoint(),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  let bucket: string;
  let queueUrl: string;
  let down: FakeDownstream;
  let replicas: ServiceProcess[] = [];
  let tables: Record<string, string>;

  beforeEach(async () => {
    bucket = await newBucket(s3);
    const suffix = randomBytes(4).toString('hex');
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `replicas-${suffix}` }))).QueueUrl!;
    tables = {
      IDEMPOTENCY_TABLE_NAME: `claims-${suffix}`,
      CIRCUIT_BREAKER_TABLE_NAME: `breakers-${suffix}`,
      STATUS_TABLE_NAME: `status-${suffix}`,
    };
    down = await new FakeDownstream().start();
  });
  afterEach(async () => {
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    replicas = [];
    await down.stop();
  });
  afterAll(() => {
    s3.destroy();
    sqs.destroy();
  });

  const replicaEnv = (name: string): Record<string, string> => ({
    ...serviceEnv(bucket, down, name),
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING: '1',
    SYNC_ON_START: 'false',
    SQS_ENDPOINT: emulatorEndpoint(),
    EVENT_QUEUE_URL: queueUrl,
    EVENT_QUEUE_WAIT_SECONDS: '1',
    EVENT_QUEUE_VISIBILITY_SECONDS: '5',
    MAX_RECORDS_PER_BATCH: '5',
    DELIVERY_CONCURRENCY: '4',
    RETRY_BASE_MS: '10',
    RETRY_MAX_MS: '200',
    STATE_BACKEND: 'dynamodb',
    DYNAMODB_ENDPOINT: process.env.TEST_DYNAMODB_ENDPOINT!,
    DYNAMODB_CREATE_TABLES: 'true',
    DELIVERY_CLAIM_LEASE_SECONDS: '2',
    ...tables,
  });

  const startReplicas = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) replicas.push(await startService(replicaEnv(`replica-${i}`)));
  };

  /** Uploads the objects and sends one notification per object (`times` copies of each, as S3 may). */
  const notify = async (times: number): Promise<string[]> => {
    const keys = Array.from({ length: FILES }, (_, i) => `calls/f-${String(i).padStart(3, '0')}.jsonl`);
    const seq = sequencers(1)[0];
    for (const [i, key] of keys.entries()) await put(s3, bucket, key, jsonl(i * RECORDS_PER_FILE, (i + 1) * RECORDS_PER_FILE));
    const bodies = keys.flatMap((key) =>
      Array.from({ length: times }, () => JSON.stringify(notification({ bucket, key, op: 'put', sequencer: seq }))),
    );
    for (let i = 0; i < bodies.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
        }),
      );
    }
    return keys;
  };

  const statusOn = async (replica: ServiceProcess, fileId: string): Promise<string> => {
    const res = await fetch(`${replica.url}/api/v1/status?fileId=${encodeURIComponent(fileId)}`);
    return res.ok ? ((await res.json()) as { status: string }).status : `HTTP ${res.status}`;
  };

  it('delivers every record once a replica is killed mid-way, stable keys, and every survivor reports every file delivered', async () => {
    down.latencyMs = 5;
    await startReplicas(3);
    await notify(1);
    const total = FILES * RECORDS_PER_FILE;
    await eventually(
      () => down.delivered().length,
      (n) => n >= total / 3,
      60_000,
      'a third of the records',
    );
    replicas[0].child.kill('SIGKILL');
    await replicas[0].exited;

    await eventually(
      () => new Set(down.delivered().map((r) => (r as { n: number }).n)).size,
      (n) => n === total,
      90_000,
      'every record',
    );
    expect(down.totals()).toMatchObject({ sumOfN: (total * (total - 1)) / 2 });
    // Duplicates only under the same key, with the same records each time (the kill's in-flight batches).
    expect(down.keyMismatches).toBe(0);
    const fileIds = [...new Set([...down.batches.keys()].map((k) => k.split('#')[0]))];
    expect(fileIds).toHaveLength(FILES);
    for (const survivor of replicas.slice(1)) {
      await eventually(
        async () => (await Promise.all(fileIds.map((id) => statusOn(survivor, id)))).filter((s) => s !== 'delivered').length,
        (left) => left === 0,
        30_000,
        'every file delivered in the shared ledger',
      );
    }
  }, 180_000);

  it('delivers every batch exactly once across replicas when every notification comes twice', async () => {
    await startReplicas(3);
    await notify(2);
    const total = FILES * RECORDS_PER_FILE;
    await eventually(
      () => down.delivered().length,
      (n) => n >= total,
      60_000,
      'every record',
    );
    const fileIds = [...new Set([...down.batches.keys()].map((k) => k.split('#')[0]))];
    // Settled: every file delivered in the shared ledger, so nothing more is on its way.
    await eventually(
      async () => (await Promise.all(fileIds.map((id) => statusOn(replicas[1], id)))).filter((s) => s !== 'delivered').length,
      (left) => left === 0,
      30_000,
      'every file delivered',
    );
    expect(down.delivered()).toHaveLength(total);
    expect(down.duplicates()).toBe(0);

    // Any replica serves any file: one that does not hold it fetches it through the verified path.
    const key = 'calls/f-007.jsonl';
    for (const replica of replicas) {
      const res = await fetch(`${replica.url}/api/v1/download/${key}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(jsonl(7 * RECORDS_PER_FILE, 8 * RECORDS_PER_FILE));
    }
  }, 120_000);

  it('shares one breaker: no replica sends during the cooldown, one probe goes out, and every record arrives without a redrive', async () => {
    const cooldownMs = 6000;
    // A request a replica sent just before the breaker opened can land this much later on a loaded
    // machine (three replicas, dynalite and fauxqs on two cores); the rest of the cooldown is silent.
    const inFlightMs = 1500;
    const env = {
      MAX_RETRIES: '2',
      BREAKER_FAILURE_THRESHOLD: '2',
      BREAKER_COOLDOWN_SECONDS: String(cooldownMs / 1000),
    };
    for (let i = 0; i < 3; i++) replicas.push(await startService({ ...replicaEnv(`breaker-${i}`), ...env }));
    down.outageUntil = Number.MAX_SAFE_INTEGER;
    await notify(1);
    const stats = async (r: ServiceProcess) =>
      ((await (await fetch(`${r.url}/api/v1/stats`)).json()) as { delivery: { breakers: Array<{ state: string; openedAt: number }> } })
        .delivery.breakers;
    // Every replica sees the one breaker open: its state is in the shared table.
    const [open] = await eventually(
      () => stats(replicas[2]),
      (b) => b[0]?.state === 'open',
      30_000,
      'the breaker open',
    );
    for (const r of replicas) expect((await stats(r))[0]).toMatchObject({ state: 'open', openedAt: open.openedAt });
    // The downstream is back just before the cooldown ends; the probe answers slowly, so that a
    // second caller probing at the same time would arrive while it is still out.
    down.latencyMs = 300;
    down.outageUntil = open.openedAt + cooldownMs - 200;
    await eventually(
      () => down.requests.filter((r) => r.status === 200).length,
      (n) => n > 0,
      30_000,
      'the probe answered',
    );
    down.latencyMs = 0;
    const total = FILES * RECORDS_PER_FILE;
    await eventually(
      () => new Set(down.delivered().map((r) => (r as { n: number }).n)).size,
      (n) => n === total,
      90_000,
      'every record',
    );

    // Requests already in flight when it opened land within a moment; after that, silence until the cooldown ends.
    const afterOpen = down.requests.filter((r) => r.arrivedAt > open.openedAt + inFlightMs).sort((x, y) => x.arrivedAt - y.arrivedAt);
    expect(afterOpen[0].arrivedAt).toBeGreaterThanOrEqual(open.openedAt + cooldownMs);
    const [probe, next] = afterOpen;
    expect(probe.status).toBe(200);
    expect(next.arrivedAt).toBeGreaterThanOrEqual(probe.at);
    for (const r of replicas) expect(((await (await fetch(`${r.url}/api/v1/dead-letters`)).json()) as { total: number }).total).toBe(0);
  }, 150_000);

  it('runs the schedule on one replica at a time and hands it over when the holder dies', async () => {
    const env = { ENABLE_PERIODIC_SYNC: 'true', SYNC_CRON: '* * * * * *' };
    for (let i = 0; i < 3; i++) replicas.push(await startService({ ...replicaEnv(`lease-${i}`), ...env }));
    type Run = { startedAt: string; finishedAt?: string; trigger: string };
    const runsOf = async (r: ServiceProcess): Promise<Run[]> =>
      ((await (await fetch(`${r.url}/api/v1/sync/runs`)).json()) as Run[]).filter((run) => run.trigger === 'schedule');
    const holderIndex = async (): Promise<number> => {
      const counts = await Promise.all(
        replicas.map(async (r) => (r.child.exitCode === null && r.child.signalCode === null ? (await runsOf(r)).length : 0)),
      );
      return counts.findIndex((n) => n >= 3);
    };
    const first = await eventually(holderIndex, (i) => i >= 0, 20_000, 'a replica holding the schedule');
    const others = replicas.filter((_, i) => i !== first);
    for (const r of others) expect(await runsOf(r)).toEqual([]);

    const killedAt = Date.now();
    replicas[first].child.kill('SIGKILL');
    await replicas[first].exited;
    const takenOver = await eventually(
      async () => (await Promise.all(others.map(runsOf))).map((runs) => runs.filter((run) => Date.parse(run.startedAt) > killedAt).length),
      (counts) => counts.some((n) => n >= 2),
      30_000,
      'another replica holding the schedule',
    );
    // Never two at once: only one survivor runs the schedule.
    expect(takenOver.filter((n) => n > 0)).toHaveLength(1);
  }, 90_000);

  it('stops at start with exit code 78 and the table name when a table is missing and may not be created', async () => {
    const env = { ...replicaEnv('no-tables'), DYNAMODB_CREATE_TABLES: 'false', PATH: process.env.PATH ?? '', HOME: tempDir('home') };
    // Not spawnSync: the emulators may run in this very process.
    const child = spawn(process.execPath, [MAIN], { env, cwd: tempDir('cwd') });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(78);
    expect(stderr).toContain(tables.IDEMPOTENCY_TABLE_NAME);
  });
});
