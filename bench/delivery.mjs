// Delivery benchmark (part of `npm run bench`): records per second from a large JSON Lines object to
// a downstream (batches of 500), beside a minimal hand-written pipeline measured in the same run as
// the ceiling (read the file, split lines, JSON.parse, batch, POST with keep-alive, 50 in flight),
// and the service's peak RSS for two file sizes (it must not grow with the file).
//   BENCH_DELIVERY_RECORDS=1000000,250000   record counts of the two files (about 120 bytes a record)
//   BENCH_DIR=/dev/shm
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createReadStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { s3Client } from '../test/support/emulator.mjs';
import { log, memoryKiB, root, startHelper, startService } from './lib.mjs';

const COUNTS = (process.env.BENCH_DELIVERY_RECORDS ?? '1000000,250000').split(',').map(Number);
const WORK = join(process.env.BENCH_DIR ?? '/dev/shm', `s3sync-delivery-${process.pid}`);
const BUCKET = 'bench-delivery';
const BATCH = 500;

function recordLine(i) {
  return JSON.stringify({
    callId: `call-${i}`,
    from: '+33123456789',
    to: '+442071234567',
    startedAt: '2026-11-23T10:00:00.000Z',
    durationSeconds: i % 3600,
    status: 'completed',
  });
}

async function uploadJsonl(s3, key, count) {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const parts = [];
  let buf = [];
  let size = 0;
  let part = 1;
  const flush = async () => {
    const out = await s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: part, Body: Buffer.from(buf.join('')) }),
    );
    parts.push({ ETag: out.ETag, PartNumber: part++ });
    buf = [];
    size = 0;
  };
  for (let i = 0; i < count; i++) {
    const line = `${recordLine(i)}\n`;
    buf.push(line);
    size += line.length;
    if (size >= 8 * 1024 * 1024) await flush();
  }
  if (size > 0) await flush();
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

const countAt = async (url) => (await (await fetch(`${url}/count`)).json()).records;

async function serviceRun(endpoint, downstreamUrl, key, count) {
  const dir = join(WORK, `svc-${count}`);
  const service = await startService(endpoint, {
    S3_BUCKET_NAME: BUCKET,
    S3_PREFIX: key,
    LOCAL_DOWNLOAD_DIR: join(dir, 'mirror'),
    STATE_DIR: join(dir, 'state'),
    CALL_DETAILS_URL: `${downstreamUrl}/calls`,
    MAX_RECORDS_PER_BATCH: String(BATCH),
  });
  const { url, proc } = service;
  const before = await countAt(downstreamUrl);
  await fetch(`${url}/api/v1/sync`, { method: 'POST' });
  const status = async () => (await fetch(`${url}/api/v1/files/${key}/status`)).json();
  // Peak RSS while delivering (the process's high-water mark would include the download).
  const rss = () => memoryKiB(proc.pid);
  let ledger = await status();
  let rssKiB = 0;
  const samples = [];
  while (ledger.status !== 'delivered') {
    if (ledger.status === 'delivering') {
      const now = rss();
      samples.push(now);
      rssKiB = Math.max(rssKiB, now);
    }
    await new Promise((r) => setTimeout(r, 10));
    ledger = await status();
  }
  const at = (q) => Math.round((samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0) / 1024);
  log(`  RSS while delivering (MiB) at 10/25/50/75/100% of the time: ${[0.1, 0.25, 0.5, 0.75, 1].map(at).join(' / ')}`);
  // From the moment the committed file was queued for delivery to the last acknowledged batch.
  const seconds = (Date.parse(ledger.deliveredAt) - Date.parse(ledger.createdAt)) / 1000;
  const delivered = (await countAt(downstreamUrl)) - before;
  await service.stop();
  if (delivered !== count) throw new Error(`service delivered ${delivered} of ${count} records`);
  return { seconds, rate: count / seconds, rssKiB, localFile: join(dir, 'mirror', key) };
}

/** The ceiling: the least a Node program must do for the same work. */
async function minimalPipeline(file, downstreamUrl, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const url = new URL(`${downstreamUrl}/calls`);
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const before = await countAt(downstreamUrl);
  const start = performance.now();
  const inflight = new Set();
  let batch = [];
  const send = async () => {
    const body = `{"records":[${batch.join(',')}],"timestamp":"${new Date().toISOString()}","batchSize":${batch.length}}`;
    batch = [];
    const p = post(body).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 50) await Promise.race(inflight);
  };
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (!line) continue;
    JSON.parse(line);
    batch.push(line);
    if (batch.length === BATCH) await send();
  }
  if (batch.length) await send();
  await Promise.all(inflight);
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  const delivered = (await countAt(downstreamUrl)) - before;
  if (delivered !== count) throw new Error(`minimal pipeline delivered ${delivered} of ${count}`);
  return { seconds, rate: count / seconds };
}

async function main() {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const emulator = await startHelper('emulator-server.mjs', { BUCKETS: BUCKET });
  const downstream = await startHelper('downstream-server.mjs');
  const s3 = s3Client(emulator.endpoint);
  const rows = [];
  try {
    for (const count of COUNTS) {
      const key = `calls-${count}.jsonl`;
      log(`uploading ${count} records`);
      await uploadJsonl(s3, key, count);
      log(`service: ${key}`);
      const ours = await serviceRun(emulator.endpoint, downstream.url, key, count);
      log(`minimal pipeline: ${key}`);
      const peer = await minimalPipeline(ours.localFile, downstream.url, count);
      rows.push({ count, ours, peer });
    }
  } finally {
    downstream.stop();
    emulator.stop();
    s3.destroy();
    rmSync(WORK, { recursive: true, force: true });
  }
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const table = [
    `Delivery benchmark (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, batches of ${BATCH}, downstream in its own process)`,
    '',
    '| records | service | records/s | peak RSS while delivering | minimal pipeline (ceiling) | records/s | service / ceiling |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      ({ count, ours, peer }) =>
        `| ${fmt(count)} | ${ours.seconds.toFixed(2)} s | ${fmt(ours.rate)} | ${(ours.rssKiB / 1024).toFixed(0)} MiB | ${peer.seconds.toFixed(2)} s | ${fmt(peer.rate)} | ${(ours.rate / peer.rate).toFixed(2)} |`,
    ),
    '',
    'Targets: 100,000 records/s or more; at least 0.7 of the minimal pipeline; peak RSS flat in file size.',
  ].join('\n');
  console.log(`\n${table}\n`);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'delivery.md'), `${table}\n`);
}

await main();
