import { join } from 'node:path';
import { tempDir } from './support/app';
import { startService } from './support/process';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

/**
 * The set-up of the FastAPI service this one replaces: AWS credentials in `.env`, nothing in the
 * environment. They must reach every AWS client, not only the service's own configuration.
 */
describe('AWS credentials given in .env', () => {
  const s3 = testS3();
  afterAll(() => s3.destroy());

  const base = async (): Promise<Record<string, string>> => ({
    S3_BUCKET_NAME: await newBucket(s3),
    S3_ENDPOINT: emulatorEndpoint(),
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING: '1',
    ENABLE_PERIODIC_SYNC: 'false',
    LOCAL_DOWNLOAD_DIR: join(tempDir('dotenv'), 'mirror'),
    STATE_DIR: tempDir('dotenv-state'),
    MIN_FREE_DISK_MB: '1',
  });

  it('reach the S3 client: health is healthy and a sync downloads', async () => {
    const env = await base();
    await put(s3, env.S3_BUCKET_NAME, 'a.txt', 'hello');
    const service = await startService(env, 20_000, {
      dotenv: 'AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nSYNC_INTERVAL_HOUR=2\n',
    });
    try {
      expect((await fetch(`${service.url}/api/v1/health`)).status).toBe(200);
      const run = (await (await fetch(`${service.url}/api/v1/sync`, { method: 'POST' })).json()) as { counts: { downloaded: number } };
      expect(run.counts.downloaded).toBe(1);
      // Shown as configured, never echoed.
      const config = await (await fetch(`${service.url}/api/v1/config`)).text();
      expect(config).toContain('configured (redacted)');
      expect(config).not.toContain('"test"');
      // A misspelt line of .env is said at start, with the name it most likely meant.
      expect(service.output()).toContain(
        'SYNC_INTERVAL_HOUR is not a variable of this service and is ignored; did you mean SYNC_INTERVAL_HOURS?',
      );
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });

  it('are needed: without them (and no other source) health says the S3 check fails', async () => {
    const service = await startService(await base());
    try {
      expect((await fetch(`${service.url}/api/v1/health`)).status).toBe(503);
      // Said as what it is, not as an internal error.
      const listing = await fetch(`${service.url}/api/v1/files?source=s3`);
      expect(listing.status).toBe(503);
      expect(((await listing.json()) as { message: string }).message).toContain('no AWS credentials');
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });
});
