import { INestApplication } from '@nestjs/common';
import { mkdtempSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import request from 'supertest';
import { AppOptions, createApp } from '../../src/app.factory';
import { AppConfig } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/config.module';

export interface TestApp {
  app: INestApplication;
  http: () => ReturnType<typeof request>;
  config: AppConfig;
  mirrorDir: string;
  stateDir: string;
  close: () => Promise<void>;
}

/** A fresh directory under the run's temporary root, which the global teardown removes. */
export function tempDir(name: string): string {
  return mkdtempSync(join(process.env.TEST_TMP_ROOT ?? tmpdir(), `s3sync-${name}-`));
}

/** Boots the real application (same factory as main.ts) with test defaults under `env`. */
export async function bootApp(env: Record<string, string>, options: AppOptions = {}): Promise<TestApp> {
  const mirrorDir = env.LOCAL_DOWNLOAD_DIR ?? join(tempDir('work'), 'mirror');
  const stateDir = env.STATE_DIR ?? tempDir('state');
  const loaded = await loadConfig({
    env: {
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      ENABLE_PERIODIC_SYNC: 'false',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      RETRY_ATTEMPTS: '2',
      MIN_FREE_DISK_MB: '1',
      ...env,
      LOCAL_DOWNLOAD_DIR: mirrorDir,
      STATE_DIR: stateDir,
    },
    envFile: join(tmpdir(), 'no-such-env-file'),
  });
  const { config } = loaded;
  const app = await createApp(loaded, options);
  await app.init();
  const server = app.getHttpServer();
  return { app, http: () => request(server), config, mirrorDir, stateDir, close: () => app.close() };
}

/** Every regular file under `dir`, as sorted relative paths with "/" separators. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  await walk(dir).catch(() => undefined);
  return out.sort();
}

/** Polls `probe` until it returns a value that `done` accepts, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
