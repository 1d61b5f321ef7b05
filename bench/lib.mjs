// What the benchmark scripts share: free ports, helper processes, and the service started from dist/.
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_CREDENTIALS } from '../test/support/emulator.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs bench/<script>, which prints one JSON line once ready; resolves with it and a stop(). */
export async function startHelper(script, env = {}) {
  const proc = spawn(process.execPath, [join(root, 'bench', script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise((resolve, reject) => {
    proc.stdout.once('data', (d) => resolve(JSON.parse(String(d))));
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { ...info, stop: () => proc.kill('SIGTERM') };
}

/** KiB from /proc/<pid>/status: VmRSS (now) or VmHWM (peak). */
export function memoryKiB(pid, field = 'VmRSS') {
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

/**
 * Starts dist/main.js against the emulator on a free loopback port with periodic sync off and
 * quiet logs, `env` on top; resolves once /ping answers. BENCH_NODE_ARGS adds Node flags (--cpu-prof),
 * BENCH_STDOUT=<file> keeps the service's stdout (--trace-gc writes there).
 */
export async function startService(endpoint, env) {
  const port = await freePort();
  const args = [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), join(root, 'dist', 'main.js')];
  const proc = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH,
      AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING: '1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      S3_ENDPOINT: endpoint,
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
      ENABLE_PERIODIC_SYNC: 'false',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', process.env.BENCH_STDOUT ? openSync(process.env.BENCH_STDOUT, 'a') : 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      if ((await fetch(`${url}/ping`)).ok) break;
    } catch {
      /* starting */
    }
    if (proc.exitCode !== null) throw new Error(`service exited with ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const stopped = new Promise((r) => proc.once('exit', r));
  return { url, proc, stop: () => (proc.kill('SIGTERM'), stopped) };
}
