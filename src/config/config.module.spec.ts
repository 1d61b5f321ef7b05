import { Test } from '@nestjs/testing';
import { ConfigService } from '@nestjs/config';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from './app-config';
import { AppConfigModule, loadConfig } from './config.module';
import { ConfigValidationError, EnvironmentVariables } from './env.schema';

function envFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 's3sync-config-')), '.env');
  writeFileSync(path, text);
  return path;
}

describe('loadConfig (@nestjs/config with the schema as its validate hook)', () => {
  const base = { S3_BUCKET_NAME: 'from-env', LOG_LEVEL: 'silent' };

  it('reads .env under the given environment, and the typed ConfigService holds the same validated values', async () => {
    const file = envFile('S3_BUCKET_NAME=from-file\nSYNC_CONCURRENCY=7\nLOG_LEVEL=WARNING\n');
    const loaded = await loadConfig({ env: { S3_BUCKET_NAME: 'from-env' }, envFile: file });
    // The environment wins over the file; the file fills what the environment leaves unset.
    expect(loaded.config.s3.bucket).toBe('from-env');
    expect(loaded.config.sync.concurrency).toBe(7);
    expect(loaded.config.log.level).toBe('warn');

    const moduleRef = await Test.createTestingModule({ imports: [AppConfigModule.forRoot(loaded)] }).compile();
    const configService = moduleRef.get<ConfigService<EnvironmentVariables, true>>(ConfigService);
    expect(configService.get('SYNC_CONCURRENCY', { infer: true })).toBe(7);
    expect(configService.get('API_PORT', { infer: true })).toBe(8888);
    expect(configService.get('S3_BUCKET_NAME', { infer: true })).toBe('from-env');
    expect(moduleRef.get(AppConfig)).toBe(loaded.config);
    await moduleRef.close();
  });

  it('rejects a bad value in .env with a ConfigValidationError naming the variable', async () => {
    const file = envFile('SYNC_CONCURRENCY=many\n');
    const failure = loadConfig({ env: base, envFile: file });
    await expect(failure).rejects.toBeInstanceOf(ConfigValidationError);
    await expect(failure).rejects.toThrow(/SYNC_CONCURRENCY/);
  });

  it('runs without a .env file', async () => {
    const loaded = await loadConfig({ env: base, envFile: join(tmpdir(), 'no-such-dir', '.env') });
    expect(loaded.config.s3.bucket).toBe('from-env');
    expect(loaded.config.api.port).toBe(8888);
  });

  it('names the lookalike variables of the file and of the environment', async () => {
    const file = envFile('SYNC_INTERVAL_HOUR=2\n');
    const loaded = await loadConfig({ env: { ...base, S3_BUCKETNAME: 'x' }, envFile: file });
    expect(loaded.config.lookalikes).toEqual(
      expect.arrayContaining([
        { name: 'SYNC_INTERVAL_HOUR', closest: 'SYNC_INTERVAL_HOURS' },
        { name: 'S3_BUCKETNAME', closest: 'S3_BUCKET_NAME' },
      ]),
    );
  });

  describe('process.env', () => {
    const saved = { S3_PREFIX: process.env.S3_PREFIX, AWS_REGION: process.env.AWS_REGION };
    afterEach(() => {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });

    it('receives a .env value it does not set, and keeps the one it does', async () => {
      delete process.env.S3_PREFIX;
      process.env.AWS_REGION = 'us-east-1';
      await loadConfig({ env: base, envFile: envFile('S3_PREFIX=landing/\nAWS_REGION=eu-west-1\n') });
      expect(process.env.S3_PREFIX).toBe('landing/');
      expect(process.env.AWS_REGION).toBe('us-east-1');
    });
  });
});
