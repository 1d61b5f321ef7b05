// npm run bench: times this service against rclone, `aws s3 sync` and curl on the same S3 endpoint
// (fauxqs, in its own process) and prints a table with medians, rates, peak RSS and ratios to rclone.
// The service is timed twice per round: its first sync in a fresh process, and (warm) the same
// process syncing all the files again after they were removed, as a long-running service does.
//   BENCH_RUNS=3       repetitions per measurement (median reported)
//   BENCH_SETS=A,B,C   data sets: A 5,000 x 1-8 KiB nested, B 200 x 1 MiB, C one 1 GiB multipart object
//   BENCH_TOOLS=service,rclone,aws,curl
//   BENCH_DIR=/dev/shm the sync targets (tmpfs: on ext4 with discard, file churn dominated every tool)
//   BENCH_SERVICE_ENV='{"SYNC_CONCURRENCY":"16"}'  extra environment for the service (experiments)
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { s3Client, TEST_CREDENTIALS } from '../test/support/emulator.mjs';
import { memoryKiB, startHelper, startService } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SETS = (process.env.BENCH_SETS ?? 'A,B,C').split(',');
const TOOLS = (process.env.BENCH_TOOLS ?? 'service,rclone,aws,curl').split(',');
const BASE = process.env.BENCH_DIR ?? '/dev/shm';
const SERVICE_ENV = JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}');
const WORK = join(BASE, `s3sync-bench-${process.pid}`);
const MiB = 1024 * 1024;
const AWS = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';
const BUCKETS = { A: 'bench-a', B: 'bench-b', C: 'bench-c' };

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function fsName(path) {
  try {
    return execFileSync('df', ['--output=fstype', path], { encoding: 'utf8' }).trim().split('\n').pop();
  } catch {
    return 'unknown';
  }
}

function need(cmd, pkg) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    log(`  (skipping ${cmd}: not installed; apt-get install -y ${pkg})`);
    return false;
  }
}

/** Deterministic pseudo-random bytes (incompressible enough, no fixtures). */
function bytes(size, seed) {
  const b = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, Math.min(i, size - 4));
  }
  return b;
}

async function pool(items, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function buildDataSets(endpoint) {
  const s3 = s3Client(endpoint);
  const info = {};
  if (SETS.includes('A')) {
    const keys = Array.from(
      { length: 5000 },
      (_, i) => `p${String(i % 20).padStart(2, '0')}/q${String(Math.floor(i / 20) % 10)}/obj-${String(i).padStart(5, '0')}.json`,
    );
    await pool(keys, 32, (key) =>
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKETS.A,
          Key: key,
          Body: bytes(1024 + ((key.length * 7919 + Number(key.slice(-10, -5))) % (7 * 1024)), Number(key.slice(-10, -5)) + 1),
        }),
      ),
    );
    info.A = { objects: keys.length };
  }
  if (SETS.includes('B')) {
    const keys = Array.from({ length: 200 }, (_, i) => `b/${String(i).padStart(3, '0')}.bin`);
    await pool(keys, 16, (key) =>
      s3.send(new PutObjectCommand({ Bucket: BUCKETS.B, Key: key, Body: bytes(MiB, Number(key.slice(2, 5)) + 7) })),
    );
    info.B = { objects: keys.length, bytes: 200 * MiB };
  }
  if (SETS.includes('C')) {
    const partSize = 8 * MiB;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKETS.C, Key: 'big.bin' }));
    const parts = [];
    await pool(
      Array.from({ length: 128 }, (_, i) => i + 1),
      8,
      async (n) => {
        const out = await s3.send(
          new UploadPartCommand({ Bucket: BUCKETS.C, Key: 'big.bin', UploadId, PartNumber: n, Body: bytes(partSize, n) }),
        );
        parts.push({ ETag: out.ETag, PartNumber: n });
      },
    );
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKETS.C, Key: 'big.bin', UploadId, MultipartUpload: { Parts: parts } }));
    info.C = { objects: 1, bytes: 1024 * MiB };
  }
  s3.destroy();
  return info;
}

/** Runs a command under GNU time; returns wall seconds, peak RSS (KiB) and, on failure, why. */
function timedCapture(cmd, args, env = {}) {
  // This workplace sets AWS_CA_BUNDLE, which rclone's SDK cannot load; the endpoint is plain HTTP.
  const { AWS_CA_BUNDLE: _unused, ...inherited } = process.env;
  const r = spawnSync('/usr/bin/time', ['-f', '__TIME__ %e %M', cmd, ...args], {
    env: { ...inherited, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * MiB,
  });
  const m = /__TIME__ ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  if (!m) throw new Error(`${cmd} did not run: ${r.error ?? r.stderr}`);
  const failed = r.status === 0 ? undefined : r.stderr.split('\n').slice(-6).join(' ');
  return { seconds: Number(m[1]), rssKiB: Number(m[2]), failed };
}

/**
 * Starts dist/main.js and times one foreground sync: the first one in a fresh process ("cold": code
 * not yet compiled by V8, memory pools empty). With `warm`, the mirror's files are then removed and
 * the same process syncs them all again, as a service running for a while does: that second sync is
 * `warm`. The peak RSS covers the whole process life.
 */
async function serviceSync(endpoint, bucket, target, state, { warm = false } = {}) {
  const service = await startService(endpoint, {
    S3_BUCKET_NAME: bucket,
    LOCAL_DOWNLOAD_DIR: target,
    STATE_DIR: state,
    MAX_DELETE: '-1',
    // Set C is one 1 GiB object.
    MAX_FILE_SIZE_MB: '0',
    ...SERVICE_ENV,
  });
  try {
    const first = await timedSync(service.url);
    let again;
    if (warm) {
      removeFiles(target);
      again = await timedSync(service.url);
      if (again.report.counts.downloaded !== first.report.counts.downloaded) {
        throw new Error(`warm sync downloaded ${again.report.counts.downloaded} objects, the first ${first.report.counts.downloaded}`);
      }
    }
    const rssKiB = memoryKiB(service.proc.pid, 'VmHWM');
    return { seconds: first.seconds, rssKiB, report: first.report, warm: again && { seconds: again.seconds, rssKiB } };
  } finally {
    await service.stop();
  }
}

async function timedSync(url) {
  const start = process.hrtime.bigint();
  const res = await fetch(`${url}/api/v1/sync`, { method: 'POST' });
  // The answer's head comes when the sync has ended; reading its report is not part of the sync.
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const report = await res.json();
  if (report.status !== 'success') throw new Error(`service sync ${report.status}: ${report.message}`);
  return { seconds, report };
}

/** Deletes the files under `dir`, keeping its folders (the service then finds them missing locally). */
function removeFiles(dir) {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) rmSync(join(entry.parentPath ?? entry.path, entry.name));
  }
}

function rcloneEnv(endpoint) {
  return {
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  };
}

const awsEnv = {
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};

/**
 * Runs every tool once per round, round after round, starting each round with the next tool, so that
 * each tool meets the machine in the same states (on a shared virtual machine the first writer of freshly freed memory pays for it:
 * a tool measured alone first can look up to twice as slow). Returns per tool the median wall time and the peak RSS.
 */
async function measureInterleaved(runners) {
  const samples = runners.map(() => ({ full: [], warm: [], noop: [] }));
  for (let i = 0; i < RUNS; i++) {
    // The order turns every round, so that no tool always meets the machine first after a
    // previous round's files were freed (the slowest moment on a shared virtual machine).
    const order = runners.map((_, t) => (t + i) % runners.length);
    for (const t of order) {
      const runner = runners[t];
      const r = await runner.run(i);
      samples[t].full.push(r.full);
      if (r.warm) samples[t].warm.push(r.warm);
      if (r.noop) samples[t].noop.push(r.noop);
      log(
        `    ${runner.name} run ${i + 1}: full ${r.full.seconds.toFixed(2)} s${r.warm ? `, warm ${r.warm.seconds.toFixed(2)} s` : ''}${r.noop ? `, no-op ${r.noop.seconds.toFixed(2)} s` : ''}`,
      );
    }
  }
  const pick = (xs) =>
    xs.length === 0
      ? undefined
      : {
          seconds: median(xs.map((x) => x.seconds)),
          rssKiB: Math.max(...xs.map((x) => x.rssKiB)),
          failed: xs.find((x) => x.failed)?.failed,
        };
  return samples.map((s) => ({ full: pick(s.full), warm: pick(s.warm), noop: pick(s.noop) }));
}

async function main() {
  if (!existsSync(join(root, 'dist', 'main.js'))) throw new Error('run `npm run build` first (npm run bench does)');
  mkdirSync(WORK, { recursive: true });
  const fsType = fsName(WORK);
  log(`bench: targets on ${WORK} (${fsType}), ${RUNS} runs each, node ${process.version}`);
  const emulator = await startHelper('emulator-server.mjs', { BUCKETS: Object.values(BUCKETS).join(',') });
  const results = [];
  try {
    log('building data sets...');
    const info = await buildDataSets(emulator.endpoint);
    for (const set of SETS) {
      const bucket = BUCKETS[set];
      const size = info[set];
      log(`set ${set}:`);
      const runners = [];
      if (TOOLS.includes('service')) {
        runners.push({
          name: 's3-sync-service',
          run: async (i) => {
            const dir = join(WORK, `svc-${set}-${i}`);
            const state = join(WORK, `svc-${set}-${i}-state`);
            const full = await serviceSync(emulator.endpoint, bucket, dir, state, { warm: true });
            const noop = await serviceSync(emulator.endpoint, bucket, dir, state);
            if (noop.report.counts.downloaded !== 0) throw new Error('no-op resync downloaded objects');
            rmSync(dir, { recursive: true, force: true });
            rmSync(state, { recursive: true, force: true });
            return { full, warm: full.warm, noop };
          },
        });
      }
      if (TOOLS.includes('rclone') && need('rclone', 'rclone')) {
        runners.push({
          name: 'rclone sync',
          note: 'default flags',
          run: async (i) => {
            const dir = join(WORK, `rclone-${set}-${i}`);
            const env = rcloneEnv(emulator.endpoint);
            const full = timedCapture('rclone', ['sync', `bench:${bucket}`, dir], env);
            const noop = timedCapture('rclone', ['sync', `bench:${bucket}`, dir], env);
            rmSync(dir, { recursive: true, force: true });
            return { full, noop };
          },
        });
      }
      if (TOOLS.includes('aws') && need(AWS, 'awscli')) {
        runners.push({
          name: 'aws s3 sync',
          note: AWS,
          run: async (i) => {
            const dir = join(WORK, `aws-${set}-${i}`);
            const args = ['--endpoint-url', emulator.endpoint, 's3', 'sync', `s3://${bucket}`, dir, '--only-show-errors'];
            const full = timedCapture(AWS, args, awsEnv);
            const noop = timedCapture(AWS, args, awsEnv);
            rmSync(dir, { recursive: true, force: true });
            return { full, noop };
          },
        });
      }
      if (set === 'C' && TOOLS.includes('curl') && need('curl', 'curl')) {
        runners.push({
          name: 'curl (ceiling)',
          note: 'one GET, no verification',
          run: async (i) => {
            const file = join(WORK, `curl-${i}.bin`);
            const full = timedCapture('curl', ['-sf', '-o', file, `${emulator.endpoint}/${bucket}/big.bin`]);
            rmSync(file, { force: true });
            return { full };
          },
        });
      }
      const measured = await measureInterleaved(runners);
      for (const [t, runner] of runners.entries()) results.push({ set, tool: runner.name, ...measured[t], size, note: runner.note ?? '' });
    }
  } finally {
    emulator.stop();
    rmSync(WORK, { recursive: true, force: true });
  }
  const table = render(results, fsType);
  process.stdout.write(`${table}\n`);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'latest.md'), `${table}\n`);
}

function render(results, fsType) {
  const lines = [
    `Medians of ${RUNS} runs; targets on ${fsType}; S3 endpoint: fauxqs ${readPkgVersion('fauxqs')} in its own process; ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${coreCount()} cores. Full sync: the first sync of a fresh service process; warm: the same process syncing every file again.`,
    '',
    '| set | tool | full sync | rate | peak RSS | vs rclone | full sync, warm | vs rclone | no-op re-sync | vs rclone |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const rc = results.find((x) => x.set === r.set && x.tool === 'rclone sync');
    const rate =
      r.size.bytes && r.size.objects < 10
        ? `${(r.size.bytes / MiB / r.full.seconds).toFixed(0)} MiB/s`
        : `${(r.size.objects / r.full.seconds).toFixed(0)} obj/s${r.size.bytes ? `, ${(r.size.bytes / MiB / r.full.seconds).toFixed(0)} MiB/s` : ''}`;
    const ratio = (a, b) => (a && b ? `${(a.seconds / b.seconds).toFixed(2)}x` : '');
    lines.push(
      `| ${r.set} | ${r.tool}${r.note ? ` (${r.note})` : ''}${r.full.failed ? ' FAILED' : ''} | ${r.full.seconds.toFixed(2)} s | ${rate} | ${(r.full.rssKiB / 1024).toFixed(0)} MiB | ${ratio(r.full, rc?.full)} | ${r.warm ? `${r.warm.seconds.toFixed(2)} s` : ''} | ${ratio(r.warm, rc?.full)} | ${r.noop ? `${r.noop.seconds.toFixed(2)} s` : ''} | ${ratio(r.noop, rc?.noop)} |`,
    );
  }
  return lines.join('\n');
}

function readPkgVersion(name) {
  return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
}
function coreCount() {
  return execFileSync('nproc', { encoding: 'utf8' }).trim();
}

main().catch((err) => {
  log(err.stack ?? String(err));
  process.exit(1);
});
