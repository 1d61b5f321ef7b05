import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './app';
import { emulatorEndpoint } from './s3';

/**
 * The environment of a service in its own process that mirrors `bucket` of the emulator into
 * directories of its own, syncing only when asked.
 */
export function mirrorServiceEnv(bucket: string, name: string): Record<string, string> {
  return {
    S3_BUCKET_NAME: bucket,
    S3_ENDPOINT: emulatorEndpoint(),
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    ENABLE_PERIODIC_SYNC: 'false',
    LOCAL_DOWNLOAD_DIR: join(tempDir(name), 'mirror'),
    STATE_DIR: tempDir(`${name}-state`),
    MIN_FREE_DISK_MB: '1',
  };
}

export const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ServiceProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** The working directory, where a `.env` given to startService is. */
  cwd: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts dist/main.js (the built service) on a free loopback port and resolves once it listens. */
export async function startService(
  env: Record<string, string>,
  timeoutMs = 20_000,
  options: { dotenv?: string } = {},
): Promise<ServiceProcess> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: `npm test` builds it first (npm run build)');
  const port = await freePort();
  const cwd = tempDir('cwd');
  // A `.env` in the working directory, read by the service as its users' set-ups do.
  if (options.dotenv !== undefined) writeFileSync(join(cwd, '.env'), options.dotenv);
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: tempDir('home'), API_HOST: '127.0.0.1', API_PORT: String(port), ...env },
    cwd,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Nothing outlives a failed start: the test cannot stop a process it never got.
      child.kill('SIGKILL');
      reject(new Error(`service did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (): void => {
      if (!out.includes('listening on')) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve();
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`service exited during start (code ${code}, signal ${signal}):\n${out}`));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, cwd, output: () => out, exited };
}
