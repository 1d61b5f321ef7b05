// Events benchmark (part of `npm run bench`): how fast the webhook accepts signed S3 notifications,
// and how long an event takes to become a committed file at a steady 200 events/s.
//   BENCH_EVENTS_SECONDS=10   duration of each phase
//   BENCH_EVENTS_RATE=200     events per second in the latency phase
//   BENCH_DIR=/dev/shm        mirror and state
//   BENCH_SERVICE_ENV='{"RATE_LIMIT_PER_SECOND":"0"}'  extra environment for the service (experiments)
// Peer in the same run: a bare node:http server that checks the same signature, parses the JSON and
// answers 202 (no storage, no Nest): the ceiling of any Node webhook on this machine.
import autocannon from 'autocannon';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { s3Client } from '../test/support/emulator.mjs';
import { log, memoryKiB, root, startHelper, startService } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_EVENTS_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_EVENTS_RATE ?? 200);
const WORK = join(process.env.BENCH_DIR ?? '/dev/shm', `s3sync-events-${process.pid}`);
const BUCKET = 'bench-events';
const SECRET = 'bench-webhook-secret-0123456789';

// The signature scheme of src/auth/webhook-signature.ts, restated so that the peer needs nothing built.
const sign = (body, ts) => createHmac('sha256', SECRET).update(`v1:${ts}:`).update(body).digest('hex');
const signedHeaders = (body) => {
  const ts = Math.floor(Date.now() / 1000);
  return { 'content-type': 'application/json', 'x-s3sync-timestamp': String(ts), 'x-s3sync-signature': `v1=${sign(body, ts)}` };
};

function record(key, size, sequencer) {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    eventTime: new Date().toISOString(),
    eventName: 'ObjectCreated:Put',
    s3: {
      s3SchemaVersion: '1.0',
      bucket: { name: BUCKET },
      object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size, sequencer },
    },
  };
}

/** The ceiling: verify, parse, answer. */
async function startBareWebhook() {
  const server = createHttpServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ts = req.headers['x-s3sync-timestamp'];
      const given = Buffer.from(String(req.headers['x-s3sync-signature'] ?? '').slice(3), 'hex');
      const expected = Buffer.from(sign(body, ts), 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return res.writeHead(401).end();
      const parsed = JSON.parse(body.toString());
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: parsed.Records.length }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** Requests per second a webhook answers 2xx to, one signed notification per request. */
async function acceptRate(url, body) {
  const result = await autocannon({
    url: `${url}/api/v1/s3-notification`,
    method: 'POST',
    headers: signedHeaders(body),
    body,
    connections: 32,
    duration: SECONDS,
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) log(`  warning: ${bad} requests failed (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`);
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total };
}

/** Sends RATE events/s for SECONDS, each for a new object; returns event-to-committed-file latencies (ms). */
async function latency(url, s3, mirror) {
  const count = RATE * SECONDS;
  const keys = Array.from({ length: count }, (_, i) => `ev/object-${String(i).padStart(6, '0')}.jsonl`);
  const body = Buffer.alloc(2048, '{"event":"x"}\n');
  log(`  seeding ${count} objects`);
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map((Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: body }))));
  }
  mkdirSync(join(mirror, 'ev'), { recursive: true });
  const sentAt = new Map();
  const latencies = [];
  const watcher = watch(join(mirror, 'ev'), (type, name) => {
    const at = performance.now();
    const key = `ev/${name}`;
    if (sentAt.has(key)) {
      latencies.push(at - sentAt.get(key));
      sentAt.delete(key);
    }
  });
  const start = performance.now();
  const pending = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const raw = JSON.stringify({ Records: [record(keys[i], body.length, (0x1000 + i).toString(16).toUpperCase())] });
    sentAt.set(keys[i], performance.now());
    pending.push(fetch(`${url}/api/v1/s3-notification`, { method: 'POST', headers: signedHeaders(raw), body: raw }).then((r) => r.status));
  }
  const statuses = await Promise.all(pending);
  const deadline = performance.now() + 30_000;
  while (latencies.length < count && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  watcher.close();
  const failed = statuses.filter((s) => s !== 202).length;
  if (failed > 0) log(`  warning: ${failed} events were not accepted`);
  const sorted = latencies.sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { committed: sorted.length, count, p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1] };
}

async function main() {
  rmSync(WORK, { recursive: true, force: true });
  const emulator = await startHelper('emulator-server.mjs', { BUCKETS: BUCKET });
  const s3 = s3Client(emulator.endpoint);
  const service = await startService(emulator.endpoint, {
    S3_BUCKET_NAME: BUCKET,
    LOCAL_DOWNLOAD_DIR: join(WORK, 'mirror'),
    STATE_DIR: join(WORK, 'state'),
    WEBHOOK_SECRET: SECRET,
    // The limiter runs (its cost is part of the figure) but does not cap the rate being measured.
    RATE_LIMIT_PER_SECOND: '1000000',
    ...JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}'),
  });
  const bare = await startBareWebhook();
  try {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'hot/key.jsonl', Body: '{"a":1}\n' }));
    const hot = JSON.stringify({ Records: [record('hot/key.jsonl', 8, '00AA')] });
    log(`accept rate: bare webhook (${SECONDS} s)`);
    const peer = await acceptRate(bare.url, hot);
    log(`accept rate: service (${SECONDS} s)`);
    const ours = await acceptRate(service.url, hot);
    log(`latency: ${RATE} events/s for ${SECONDS} s`);
    const lat = await latency(service.url, s3, join(WORK, 'mirror'));
    const rss = memoryKiB(service.proc.pid, 'VmHWM');
    const fmt = (n, d = 1) => (n === undefined ? 'n/a' : n.toFixed(d));
    const table = [
      `Events benchmark (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${SECONDS} s phases)`,
      '',
      '| measurement | service | bare node:http webhook (ceiling) | target |',
      '|---|---|---|---|',
      `| signed notifications accepted per second (32 connections) | ${fmt(ours.rps, 0)} (p99 ${ours.p99} ms) | ${fmt(peer.rps, 0)} (p99 ${peer.p99} ms) | >= 1000 ${ours.rps >= 1000 ? '✓' : '✗'} |`,
      `| event to committed file at ${RATE}/s, p50 | ${fmt(lat.p50)} ms | | |`,
      `| event to committed file at ${RATE}/s, p99 | ${fmt(lat.p99)} ms (max ${fmt(lat.max)}) | | < 100 ms ${lat.p99 < 100 ? '✓' : '✗'} |`,
      `| files committed / events sent | ${lat.committed} / ${lat.count} | | all |`,
      `| service peak RSS | ${(rss / 1024).toFixed(0)} MiB | | |`,
    ].join('\n');
    console.log(`\n${table}\n`);
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', 'events.md'), `${table}\n`);
  } finally {
    bare.close();
    await service.stop();
    emulator.stop();
    s3.destroy();
    rmSync(WORK, { recursive: true, force: true });
  }
}

await main();
