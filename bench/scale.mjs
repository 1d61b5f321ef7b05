// npm run bench:scale: the service and rclone against a synthetic bucket of 5,000, 1,000,000 and
// 10,000,000 keys (bench/synthetic-s3.mjs, nothing stored, so the endpoint is not what is measured).
// Per size, in a fresh process each: a full sync into an empty directory (objects/s, CPU per object,
// peak RSS) and a no-op re-sync (time, peak RSS). Above SCALE_FULL_MAX keys a full sync would take
// an hour on two cores, so the copy is laid down by this script instead (files of the listed size and
// modification time, sparse), the service's first sync adopts it (rclone's size-and-mtime rule) and
// its second sync is the no-op that is timed. rclone runs with --use-server-modtime, which makes its
// check the listing's size and LastModified like the service's; by default it sends a HEAD for every
// object to read its mtime metadata, which at these sizes measures the endpoint instead.
// Takes about 20 minutes at the default sizes on two cores; not part of `npm run bench` or CI.
//   SCALE_SIZES=5000,1000000,10000000  SCALE_TOOLS=service,rclone  SCALE_FULL_MAX=1000000
//   SCALE_DIR=/dev/shm     where the copies go when the file system has room and inodes for them,
//   SCALE_DISK_DIR=/var/tmp  else here (tmpfs keeps 4 KiB and an inode per small file)
//   SCALE_STATE_DIR=/var/tmp the service's SQLite state (on disk, as in a deployment)
//   BENCH_SERVICE_ENV='{"SYNC_CONCURRENCY":"32"}'  extra environment for the service
//   SCALE_DEBUG=1  also prints the service's RSS split (anonymous, file) after each no-op
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, futimesSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { TEST_CREDENTIALS } from '../test/support/emulator.mjs';
import { log, memoryKiB, root, startHelper, startService } from './lib.mjs';
import { keySpace } from './synthetic-keys.mjs';

const LAST_MODIFIED = '2026-01-01T00:00:00.000Z';
const MiB = 1024 * 1024;
const CLOCK_TICKS = 100;

if (!isMainThread) layDownRange(workerData);
else
  main().catch((err) => {
    log(err.stack ?? String(err), err.cause ? `cause: ${err.cause.stack ?? err.cause}` : '');
    process.exit(1);
  });

async function main() {
  const sizes = (process.env.SCALE_SIZES ?? '5000,1000000,10000000').split(',').map(Number);
  const tools = (process.env.SCALE_TOOLS ?? 'service,rclone').split(',');
  const fullMax = Number(process.env.SCALE_FULL_MAX ?? 1_000_000);
  const stateBase = process.env.SCALE_STATE_DIR ?? '/var/tmp';
  const rows = [];
  for (const keys of sizes) {
    const work = join(placeFor(keys), `s3sync-scale-${process.pid}-${keys}`);
    const state = join(stateBase, `s3sync-scale-state-${process.pid}-${keys}`);
    mkdirSync(work, { recursive: true });
    const endpoint = await startHelper('synthetic-s3.mjs', { SCALE_KEYS: String(keys), SCALE_LAST_MODIFIED: LAST_MODIFIED });
    log(`${keys.toLocaleString('en')} keys: copies in ${work} (${fsType(work)})`);
    try {
      const full = keys <= fullMax;
      if (tools.includes('service')) {
        const dir = join(work, 'service');
        let first;
        if (full) {
          first = await serviceSync(endpoint.endpoint, dir, state);
          if (first.counts.downloaded !== keys) throw new Error(`the full sync downloaded ${first.counts.downloaded} of ${keys}`);
        } else {
          const laid = await layDown(keys, dir);
          log(`  laid down ${keys.toLocaleString('en')} files in ${laid.toFixed(0)} s`);
          first = await serviceSync(endpoint.endpoint, dir, state);
          if (first.counts.skipped !== keys || first.counts.downloaded !== 0)
            throw new Error(`the adopting sync: ${JSON.stringify(first.counts)}`);
        }
        log(`  service ${full ? 'full sync' : 'adopting sync'}: ${describe(first, keys)} ${first.status ?? ''}`);
        const noop = await serviceSync(endpoint.endpoint, dir, state);
        if (noop.counts.downloaded !== 0 || noop.counts.skipped !== keys)
          throw new Error(`the no-op re-sync: ${JSON.stringify(noop.counts)}`);
        log(`  service no-op: ${describe(noop, keys)} ${noop.status ?? ''}`);
        rows.push({ keys, tool: 's3-sync-service', full: full ? first : undefined, adopt: full ? undefined : first, noop });
        // rclone's no-op above SCALE_FULL_MAX checks the copy the service adopted (neither changes it).
        if (!full && tools.includes('rclone')) {
          const rc = rclone(endpoint.endpoint, dir);
          log(`  rclone no-op: ${describe(rc, keys)}`);
          rows.push({ keys, tool: 'rclone sync', noop: rc });
        }
        removeTree(dir);
        rmSync(state, { recursive: true, force: true });
      }
      if (full && tools.includes('rclone')) {
        const dir = join(work, 'rclone');
        const first = rclone(endpoint.endpoint, dir);
        log(`  rclone full sync: ${describe(first, keys)}`);
        const noop = rclone(endpoint.endpoint, dir);
        log(`  rclone no-op: ${describe(noop, keys)}`);
        rows.push({ keys, tool: 'rclone sync', full: first, noop });
        removeTree(dir);
      }
    } finally {
      endpoint.stop();
      removeTree(work);
      rmSync(state, { recursive: true, force: true });
    }
    // Written after every size: a failure at 10M keeps what the smaller sizes measured.
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', 'scale.md'), `${render(rows)}\n`);
  }
  process.stdout.write(`${render(rows)}\n`);
}

function describe(r, keys) {
  return `${r.seconds.toFixed(1)} s, ${(keys / r.seconds).toFixed(0)} keys/s, ${((r.cpuSeconds / keys) * 1e6).toFixed(1)} µs CPU a key, peak ${(r.rssKiB / 1024).toFixed(0)} MiB`;
}

/** SCALE_DIR when its file system has room and inodes for `keys` small files, else SCALE_DISK_DIR. */
function placeFor(keys) {
  const fast = process.env.SCALE_DIR ?? '/dev/shm';
  const disk = process.env.SCALE_DISK_DIR ?? '/var/tmp';
  try {
    const s = statfsSync(fast);
    // Two copies at most at a time (the service's and rclone's), each file a 4 KiB block and an inode.
    if (s.ffree > keys * 2.2 && s.bavail * s.bsize > keys * 2.2 * 4096) return fast;
  } catch {
    /* no such directory */
  }
  return disk;
}

/** One sync of a fresh service process started in background mode; its own timing, CPU and peak RSS. */
async function serviceSync(endpoint, dir, state) {
  const service = await startService(endpoint, {
    S3_BUCKET_NAME: 'scale',
    LOCAL_DOWNLOAD_DIR: dir,
    STATE_DIR: state,
    MAX_DELETE: '-1',
    ...JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}'),
  });
  try {
    const cpuBefore = cpuSeconds(service.proc.pid);
    const started = await (await fetch(`${service.url}/api/v1/sync?background=true`, { method: 'POST' })).json();
    let run;
    let pollFailures = 0;
    for (;;) {
      try {
        run = await (await fetch(`${service.url}/api/v1/sync/runs/${started.run_id}`)).json();
        pollFailures = 0;
      } catch (err) {
        const exit = service.proc.exitCode ?? service.proc.signalCode;
        // A kept-alive connection the server closes as the next poll goes out (its idle timer fires
        // late when a statement over millions of rows held its event loop): asked again.
        if (exit === null && ++pollFailures < 3) continue;
        throw new Error(
          `the run's status did not come (${err.cause?.message ?? err.message})${exit !== null ? `: the service exited (${exit})` : ''}`,
          {
            cause: err,
          },
        );
      }
      if (run.run_status !== 'running') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (run.status !== 'success') throw new Error(`service sync ${run.run_status}: ${run.message}`);
    return {
      seconds: (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000,
      cpuSeconds: cpuSeconds(service.proc.pid) - cpuBefore,
      rssKiB: memoryKiB(service.proc.pid, 'VmHWM'),
      counts: run.counts,
      ...(process.env.SCALE_DEBUG && {
        status: [
          ...readFileSync(`/proc/${service.proc.pid}/status`, 'utf8').match(/^(VmRSS|RssAnon|RssFile|RssShmem):.*$/gm),
          ...(await (await fetch(`${service.url}/metrics`)).text())
            .split('\n')
            .filter((l) => /^nodejs_heap_space_size_total_bytes|^nodejs_external_memory_bytes/.test(l))
            .map((l) =>
              l.replace(/nodejs_heap_space_size_total_bytes\{space="([a-z_]+)"\} (\d+)/, (_, s, b) => `${s} ${(b / 1048576).toFixed(0)}M`),
            ),
        ].join(' '),
      }),
    };
  } finally {
    await service.stop();
  }
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function rclone(endpoint, dir) {
  // This workplace may set AWS_CA_BUNDLE, which rclone cannot load; the endpoint is plain HTTP.
  const { AWS_CA_BUNDLE: _unused, ...inherited } = process.env;
  const r = spawnSync('/usr/bin/time', ['-f', '__TIME__ %e %M %U %S', 'rclone', 'sync', '--use-server-modtime', 'scale:scale', dir], {
    env: {
      ...inherited,
      RCLONE_CONFIG_SCALE_TYPE: 's3',
      RCLONE_CONFIG_SCALE_PROVIDER: 'Other',
      RCLONE_CONFIG_SCALE_ENDPOINT: endpoint,
      RCLONE_CONFIG_SCALE_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      RCLONE_CONFIG_SCALE_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      RCLONE_CONFIG_SCALE_FORCE_PATH_STYLE: 'true',
    },
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * MiB,
  });
  const m = /__TIME__ ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
  if (!m || r.status !== 0) throw new Error(`rclone failed: ${r.error ?? r.stderr.split('\n').slice(-6).join(' ')}`);
  return { seconds: Number(m[1]), rssKiB: Number(m[2]), cpuSeconds: Number(m[3]) + Number(m[4]) };
}

/** Creates the copy of `keys` objects a full sync would leave, on two threads; returns the seconds it took. */
async function layDown(keys, dir) {
  const started = Date.now();
  const folders = Math.ceil(keys / 1000);
  const threads = 2;
  await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const from = Math.floor((folders * t) / threads) * 1000;
      const to = Math.min(keys, Math.floor((folders * (t + 1)) / threads) * 1000);
      return new Promise((resolve, reject) => {
        const worker = new Worker(new URL(import.meta.url), { workerData: { keys, dir, from, to } });
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lay-down thread exited ${code}`))));
      });
    }),
  );
  return (Date.now() - started) / 1000;
}

function layDownRange({ keys, dir, from, to }) {
  // Only names, sizes and times matter to a no-op; the bodies are never read, so the files are sparse.
  const space = keySpace(keys, Buffer.alloc(1024));
  const mtime = new Date(LAST_MODIFIED);
  for (let i = from; i < to; i++) {
    const key = space.keyOf(i);
    if (i % 1000 === 0) mkdirSync(join(dir, key.slice(0, key.indexOf('/'))), { recursive: true });
    const fd = openSync(join(dir, key), 'w');
    ftruncateSync(fd, space.sizeOf(i));
    futimesSync(fd, mtime, mtime);
    closeSync(fd);
  }
}

function removeTree(dir) {
  // rm(1) walks a tree of millions of files several times faster than rmSync.
  spawnSync('rm', ['-rf', dir]);
}

function fsType(path) {
  const r = spawnSync('df', ['--output=fstype', path], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').pop() ?? 'unknown';
}

function render(rows) {
  const mib = (kib) => `${(kib / 1024).toFixed(0)} MiB`;
  const cores = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
  const lines = [
    `One run each; synthetic S3 endpoint (bench/synthetic-s3.mjs) in its own process; rclone ${rcloneVersion()} with --use-server-modtime; ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cores} cores. Every figure is a fresh process. Above ${Number(process.env.SCALE_FULL_MAX ?? 1_000_000).toLocaleString('en')} keys the copy is laid down by the script and adopted by a first sync.`,
    '',
    '| keys | tool | full sync | objects/s | CPU per object | peak RSS | first sync over a laid-down copy | no-op re-sync | peak RSS |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const full = r.full
      ? [
          `${r.full.seconds.toFixed(1)} s`,
          (r.keys / r.full.seconds).toFixed(0),
          `${((r.full.cpuSeconds / r.keys) * 1e6).toFixed(0)} µs`,
          mib(r.full.rssKiB),
        ]
      : ['', '', '', ''];
    const adopt = r.adopt ? `${r.adopt.seconds.toFixed(1)} s, ${mib(r.adopt.rssKiB)}` : '';
    lines.push(
      `| ${r.keys.toLocaleString('en')} | ${r.tool} | ${full.join(' | ')} | ${adopt} | ${r.noop.seconds.toFixed(1)} s | ${mib(r.noop.rssKiB)} |`,
    );
  }
  return lines.join('\n');
}

function rcloneVersion() {
  const r = spawnSync('rclone', ['version'], { encoding: 'utf8' });
  return /rclone (v[\d.]+)/.exec(r.stdout ?? '')?.[1] ?? '';
}
