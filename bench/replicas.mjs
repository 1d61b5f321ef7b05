// Replicas benchmark (part of `npm run bench`): records/s and files/s with 1, 2 and 3 replicas of
// the built service on one SQS queue and shared DynamoDB state (dynalite), against the same
// emulators and downstream, and the DynamoDB and SQS requests each file costs, counted by proxies
// in front of both. On a 2-core machine this shows the overhead of coordination more than any
// speed-up: the replicas, the emulators and the downstream share the same two cores.
//   BENCH_REPLICAS=1,2,3        replica counts
//   BENCH_REPLICA_FILES=300     files per round (JSON Lines, BENCH_REPLICA_RECORDS records each)
//   BENCH_REPLICA_RECORDS=200
//   BENCH_DIR=/dev/shm
import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import dynalite from 'dynalite';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { s3Client, TEST_CREDENTIALS } from '../test/support/emulator.mjs';
import { log, startHelper, startService } from './lib.mjs';

const COUNTS = (process.env.BENCH_REPLICAS ?? '1,2,3').split(',').map(Number);
const FILES = Number(process.env.BENCH_REPLICA_FILES ?? 300);
const RECORDS = Number(process.env.BENCH_REPLICA_RECORDS ?? 200);
const WORK = join(process.env.BENCH_DIR ?? '/dev/shm', `s3sync-replicas-${process.pid}`);

/** An HTTP proxy that counts requests by their X-Amz-Target (the operation), for SQS and DynamoDB alike. */
async function countingProxy(target) {
  const counts = new Map();
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const op = String(req.headers['x-amz-target'] ?? 'other')
      .split('.')
      .pop();
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, reset: () => counts.clear(), close: () => server.close() };
}

const jsonl = (file) =>
  Array.from({ length: RECORDS }, (_, i) =>
    JSON.stringify({ id: `c-${file}-${i}`, n: file * RECORDS + i, caller: '+4420000000', seconds: 42 }),
  ).join('\n') + '\n';

async function round(replicas, emulator, downstream, sqsProxy, dynamoProxy) {
  const suffix = `${replicas}-${Date.now()}`;
  const bucket = `bench-replicas-${suffix}`;
  const s3 = s3Client(emulator.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const sqs = new SQSClient({ endpoint: emulator.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-${suffix}` }))).QueueUrl;
  const keys = Array.from({ length: FILES }, (_, i) => `calls/${String(i).padStart(5, '0')}.jsonl`);
  for (const [i, key] of keys.entries()) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: jsonl(i) }));

  const services = [];
  for (let i = 0; i < replicas; i++) {
    const dir = join(WORK, suffix, `r${i}`);
    services.push(
      await startService(emulator.endpoint, {
        S3_BUCKET_NAME: bucket,
        LOCAL_DOWNLOAD_DIR: join(dir, 'mirror'),
        STATE_DIR: join(dir, 'state'),
        MIN_FREE_DISK_MB: '1',
        SQS_ENDPOINT: sqsProxy.url,
        EVENT_QUEUE_URL: queueUrl,
        EVENT_QUEUE_WAIT_SECONDS: '1',
        CALL_DETAILS_URL: `${downstream.url}/calls`,
        MAX_RECORDS_PER_BATCH: '500',
        STATE_BACKEND: 'dynamodb',
        DYNAMODB_ENDPOINT: dynamoProxy.url,
        DYNAMODB_CREATE_TABLES: 'true',
        IDEMPOTENCY_TABLE_NAME: `claims-${suffix}`,
        CIRCUIT_BREAKER_TABLE_NAME: `breakers-${suffix}`,
        STATUS_TABLE_NAME: `status-${suffix}`,
      }),
    );
  }
  const before = await (await fetch(`${downstream.url}/count`)).json();
  sqsProxy.reset();
  dynamoProxy.reset();
  const started = performance.now();
  for (let i = 0; i < keys.length; i += 10) {
    const Entries = keys.slice(i, i + 10).map((key, j) => ({
      Id: String(j),
      MessageBody: JSON.stringify({
        Records: [
          {
            eventVersion: '2.1',
            eventSource: 'aws:s3',
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: bucket }, object: { key, size: 0 } },
          },
        ],
      }),
    }));
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
  }
  const want = before.records + FILES * RECORDS;
  for (;;) {
    const now = await (await fetch(`${downstream.url}/count`)).json();
    if (now.records >= want) break;
    if (performance.now() - started > 300_000)
      throw new Error(`replicas=${replicas}: ${now.records - before.records} of ${FILES * RECORDS} records after 300 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  const perFile = (counts) =>
    Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b)).map(([op, n]) => [op, +(n / FILES).toFixed(2)]));
  const result = {
    replicas,
    seconds,
    recordsPerSecond: (FILES * RECORDS) / seconds,
    filesPerSecond: FILES / seconds,
    dynamodbPerFile: perFile(dynamoProxy.counts),
    sqsPerFile: perFile(sqsProxy.counts),
  };
  await Promise.all(services.map((s) => s.stop()));
  s3.destroy();
  sqs.destroy();
  return result;
}

mkdirSync(WORK, { recursive: true });
const emulator = await startHelper('emulator-server.mjs');
const downstream = await startHelper('downstream-server.mjs');
const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise((r) => dynamo.listen(0, '127.0.0.1', r));
const dynamoProxy = await countingProxy(`http://127.0.0.1:${dynamo.address().port}`);
const sqsProxy = await countingProxy(emulator.endpoint);
const results = [];
try {
  for (const n of COUNTS) {
    log(`replicas: ${n} replica(s), ${FILES} files of ${RECORDS} records`);
    results.push(await round(n, emulator, downstream, sqsProxy, dynamoProxy));
  }
} finally {
  emulator.stop();
  downstream.stop();
  dynamo.close();
  dynamoProxy.close();
  sqsProxy.close();
  rmSync(WORK, { recursive: true, force: true });
}

const sum = (o) =>
  Object.values(o)
    .reduce((a, b) => a + b, 0)
    .toFixed(1);
const ops = (o) =>
  Object.entries(o)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
console.log(
  `\n${FILES} files of ${RECORDS} records per round, SQS notifications to one queue, DynamoDB on dynalite; ${new Date().toISOString().slice(0, 10)}, node ${process.version}, 2 cores shared by every process.\n`,
);
console.log('| replicas | time | records/s | files/s | DynamoDB requests per file | SQS requests per file |');
console.log('|---:|---:|---:|---:|---|---|');
for (const r of results) {
  console.log(
    `| ${r.replicas} | ${r.seconds.toFixed(2)} s | ${Math.round(r.recordsPerSecond)} | ${r.filesPerSecond.toFixed(0)} | ${sum(r.dynamodbPerFile)} (${ops(r.dynamodbPerFile)}) | ${sum(r.sqsPerFile)} (${ops(r.sqsPerFile)}) |`,
  );
}
