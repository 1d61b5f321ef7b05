import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './support/app';
import { ServiceProcess, startService } from './support/process';
import { contentFor, emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

/**
 * A user of the FastAPI "S3 Sync Service" switching over: its README's `.env`, unchanged, in the
 * working directory, and every curl of its usage examples and manual tests, with the fields its
 * example answers show. Only the endpoint (the emulator) and the port (a free one) are the test's.
 */
describe('drop-in for the FastAPI service: its .env and its README curls', () => {
  const s3 = testS3();
  let bucket: string;
  let service: ServiceProcess;
  let cwd: string;
  const pdf = contentFor('projects/my-project/document.pdf', 20_000);
  const KEYS = ['projects/my-project/document.pdf', 'projects/other/notes.txt', 'top.txt'];

  const seedDotenv = (bucketName: string): string =>
    [
      '# AWS Configuration',
      'AWS_ACCESS_KEY_ID=your_access_key',
      'AWS_SECRET_ACCESS_KEY=your_secret_key',
      'AWS_REGION=us-east-1',
      `S3_BUCKET_NAME=${bucketName}`,
      '',
      '# Sync Configuration',
      'LOCAL_DOWNLOAD_DIR=downloaded_files',
      'SYNC_INTERVAL_HOURS=1.0',
      'ENABLE_PERIODIC_SYNC=true',
      'MAX_FILE_SIZE_MB=1000',
      '',
      '# API Configuration',
      'API_HOST=0.0.0.0',
      'API_PORT=8888',
      'LOG_LEVEL=INFO',
      'LOG_FILE=s3_notifications.log',
      '',
      '# Performance Configuration',
      'SKIP_EXISTING_FILES=true',
      'VERIFY_FILE_INTEGRITY=true',
      'DOWNLOAD_TIMEOUT_SECONDS=300',
      'RETRY_ATTEMPTS=3',
      '',
    ].join('\n');

  beforeAll(async () => {
    bucket = await newBucket(s3);
    await put(s3, bucket, KEYS[0], pdf);
    for (const key of KEYS.slice(1)) await put(s3, bucket, key, contentFor(key));
    // The emulator, loopback and a free port; the test machine's disk may be small.
    service = await startService({ S3_ENDPOINT: emulatorEndpoint(), MIN_FREE_DISK_MB: '1' }, 20_000, { dotenv: seedDotenv(bucket) });
    cwd = service.cwd;
  });

  afterAll(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    s3.destroy();
  });

  const call = (path: string, init?: RequestInit): Promise<Response> => fetch(`${service.url}${path}`, init);
  const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

  interface SeedSyncResponse {
    status: string;
    message: string;
    processed_files: number;
    successful_operations: number;
    failed_operations: number;
    sync_details: Array<{ operation: string; file_key: string; status: string; message: string }>;
  }

  it('curl "http://localhost:8888/api/v1/health": the fields of its example answer', async () => {
    const res = await call('/api/v1/health');
    expect(res.status).toBe(200);
    const body = await json<Record<string, unknown>>(res);
    expect(body).toMatchObject({
      status: 'healthy',
      message: expect.any(String),
      s3_connection: true,
      download_directory: join(cwd, 'downloaded_files'),
      directory_writable: true,
    });
    expect(Number.isNaN(Date.parse(String(body.timestamp)))).toBe(false);
  });

  it('curl -X POST "http://localhost:8888/api/v1/sync": the fields of its example answer', async () => {
    const res = await call('/api/v1/sync', { method: 'POST' });
    expect(res.status).toBe(200);
    const body = await json<SeedSyncResponse>(res);
    expect(body).toMatchObject({ status: 'success', processed_files: 3, successful_operations: 3, failed_operations: 0 });
    expect(body.message).toMatch(/^Synced 3 of 3 files in \d+\.\d\d seconds$/);
    expect(body.sync_details).toHaveLength(3);
    for (const detail of body.sync_details) {
      expect(detail).toMatchObject({ operation: 'download', file_key: expect.any(String), status: 'success' });
      expect(detail.message).toMatch(/^Downloaded successfully in \d+\.\d\d seconds/);
    }
    expect(readFileSync(join(cwd, 'downloaded_files', KEYS[0]))).toEqual(pdf);
  });

  it('curl -X POST "http://localhost:8888/api/v1/sync?prefix=projects/my-project": only that prefix', async () => {
    await put(s3, bucket, 'projects/my-project/new.txt', 'new');
    await put(s3, bucket, 'elsewhere/new.txt', 'not this time');
    const body = await json<SeedSyncResponse>(await call('/api/v1/sync?prefix=projects/my-project', { method: 'POST' }));
    expect(body).toMatchObject({ status: 'success', processed_files: 1 });
    expect(body.sync_details.map((d) => d.file_key)).toEqual(['projects/my-project/new.txt']);
    expect(existsSync(join(cwd, 'downloaded_files', 'elsewhere/new.txt'))).toBe(false);
  });

  it('curl -X POST "http://localhost:8888/api/v1/sync?background=true": started, then finished', async () => {
    const res = await call('/api/v1/sync?background=true', { method: 'POST' });
    expect(res.status).toBe(202);
    const started = await json<{ run_id: string; status_url: string }>(res);
    const report = await eventually(
      async () => json<SeedSyncResponse & { run_status: string }>(await call(started.status_url)),
      (r) => r.run_status !== 'running',
      15_000,
      'the background sync to finish',
    );
    expect(report).toMatchObject({ status: 'success', processed_files: 1 });
    expect(report.sync_details.map((d) => d.file_key)).toEqual(['elsewhere/new.txt']);
  });

  it('curl "http://localhost:8888/api/v1/files?source=s3&prefix=projects/" and "?source=s3"', async () => {
    type Listing = { source: string; files: Array<{ key: string; size: number }> };
    const underPrefix = await json<Listing>(await call('/api/v1/files?source=s3&prefix=projects/'));
    expect(underPrefix.files.map((f) => f.key).sort()).toEqual([
      'projects/my-project/document.pdf',
      'projects/my-project/new.txt',
      'projects/other/notes.txt',
    ]);
    expect(underPrefix.files.find((f) => f.key === KEYS[0])?.size).toBe(pdf.length);
    const all = await json<Listing>(await call('/api/v1/files?source=s3'));
    expect(all.files).toHaveLength(5);
  });

  it('curl "http://localhost:8888/api/v1/files?source=local"', async () => {
    const body = await json<{ source: string; files: Array<{ key: string }> }>(await call('/api/v1/files?source=local'));
    expect(body.source).toBe('local');
    expect(body.files.map((f) => f.key).sort()).toEqual([...KEYS, 'elsewhere/new.txt', 'projects/my-project/new.txt'].sort());
  });

  it('curl "http://localhost:8888/api/v1/download/projects/my-project/document.pdf"', async () => {
    const res = await call('/api/v1/download/projects/my-project/document.pdf');
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(pdf);
  });

  it('curl http://localhost:8888/, /api/v1/stats and /api/v1/config', async () => {
    const info = await json<{ name: string; links: Record<string, string> }>(await call('/'));
    expect(info.links).toMatchObject({ health: '/api/v1/health', sync: '/api/v1/sync' });
    const stats = await json<{ totals: { objects: number } }>(await call('/api/v1/stats'));
    expect(stats.totals.objects).toBe(5);
    const config = await call('/api/v1/config');
    expect(config.status).toBe(200);
    const text = await config.text();
    // The .env's values with their meaning: 1000 MB, INFO is pino's info; its secret never shown.
    expect(JSON.parse(text)).toMatchObject({ sync: { maxFileBytes: 1000 * 1024 * 1024 }, log: { level: 'info' } });
    expect(text).not.toContain('your_secret_key');
  });

  it('LOG_FILE=s3_notifications.log: the log goes there as well as stdout, and SIGHUP reopens it for logrotate', async () => {
    const logFile = join(cwd, 's3_notifications.log');
    const lines = (path: string): Array<{ msg?: string; runId?: string }> =>
      existsSync(path)
        ? readFileSync(path, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { msg?: string; runId?: string })
        : [];
    await eventually(
      () => lines(logFile),
      (l) => l.some((x) => x.msg === 'sync started'),
      5_000,
      'the sync runs in the log file',
    );
    expect(service.output()).toContain('"msg":"sync started"');
    // logrotate: move the file away, signal, and the next line starts a new file.
    renameSync(logFile, `${logFile}.1`);
    service.child.kill('SIGHUP');
    // The reopen creates the file at once: from then on every line goes there.
    await eventually(() => existsSync(logFile), Boolean, 5_000, 'the log file reopened');
    const body = await json<{ run_id: string }>(await call('/api/v1/sync', { method: 'POST' }));
    const fresh = await eventually(
      () => lines(logFile),
      (l) => l.some((x) => x.runId === body.run_id),
      5_000,
      'the new run in the reopened log file',
    );
    expect(fresh.some((x) => x.runId === body.run_id)).toBe(true);
    expect(lines(`${logFile}.1`).some((x) => x.runId === body.run_id)).toBe(false);
    expect((await call('/api/v1/health')).status).toBe(200);
  });
});
