import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { bootApp, eventually, TestApp } from './support/app';
import { FakeIngest } from './support/fake-ingest';
import { contentFor, emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

async function untar(gz: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      files.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  Readable.from([gunzipSync(gz)]).pipe(ex);
  await done;
  return files;
}

describe('bundles to an ingest endpoint', () => {
  let s3: S3Client;
  let bucket: string;
  let archive: string;
  let ingest: FakeIngest;
  let t: TestApp;

  const boot = async (env: Record<string, string> = {}) => {
    t = await bootApp({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: emulatorEndpoint(),
      NIFI_ENDPOINT_URL: ingest.url,
      NIFI_USERNAME: ingest.username,
      NIFI_PASSWORD: ingest.password,
      ARCHIVE_BUCKET_NAME: archive,
      BUNDLE_MAX_FILES: '3',
      BUNDLE_MAX_AGE_SECONDS: '1',
      RETRY_BASE_MS: '10',
      RETRY_MAX_MS: '100',
      ...env,
    });
  };
  const archived = async (): Promise<string[]> =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: archive }))).Contents ?? []).map((o) => o.Key!).sort();
  const archivedBody = async (key: string): Promise<Buffer> =>
    Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: archive, Key: key }))).Body!.transformToByteArray());

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    archive = `archive-${randomBytes(5).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: archive }));
    ingest = await new FakeIngest().start();
  });
  afterEach(async () => {
    await t?.close();
    await ingest.stop();
    s3.destroy();
  });

  it('bundles committed files by count and by age, archives each bundle, posts it, and it unpacks to the originals', async () => {
    await boot();
    const keys = ['in/a.jsonl', 'in/b c.txt', 'in/données.jsonl', 'in/d.bin', 'in/e.jsonl'];
    for (const [i, k] of keys.entries()) await put(s3, bucket, k, contentFor(k, 1000 + i * 100));
    await t.http().post('/api/v1/sync').expect(200);
    // Three by count at once, the other two when the oldest is a second old.
    await eventually(
      () => ingest.received.length,
      (n) => n === 2,
      15_000,
      'two bundles posted',
    );
    const unpacked = new Map<string, Buffer>();
    for (const r of ingest.received) for (const [name, data] of await untar(r.body)) unpacked.set(name, data);
    expect([...unpacked.keys()].sort()).toEqual([...keys].sort());
    for (const [i, k] of keys.entries()) expect(unpacked.get(k)).toEqual(contentFor(k, 1000 + i * 100));
    expect(ingest.received.map((r) => Number(r.headers['x-bundle-files'])).sort()).toEqual([2, 3]);

    const stored = await archived();
    expect(stored).toHaveLength(2);
    expect(stored[0]).toMatch(/^bundles\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f-]+\.tar\.gz$/);
    const posted = new Set(ingest.received.map((r) => r.body.toString('base64')));
    for (const key of stored) expect(posted.has((await archivedBody(key)).toString('base64'))).toBe(true);

    // A file version is bundled once: a second sync commits nothing, so nothing new can be bundled.
    const again = await t.http().post('/api/v1/sync').expect(200);
    expect(again.body.counts).toMatchObject({ downloaded: 0 });
    expect(ingest.received).toHaveLength(2);
    const stats = (await t.http().get('/api/v1/stats').expect(200)).body as { delivery: { bundles: unknown } };
    expect(stats.delivery.bundles).toEqual({ enabled: true, waitingFiles: 0, bundles: { posted: 2 } });
  });

  it('resends the same archived bundle when the endpoint was down, through its own breaker', async () => {
    await boot({ MAX_RETRIES: '1', BREAKER_FAILURE_THRESHOLD: '10' });
    ingest.failures.push(503, 503, 503);
    for (const k of ['x/1.txt', 'x/2.txt', 'x/3.txt']) await put(s3, bucket, k, contentFor(k, 500));
    await t.http().post('/api/v1/sync').expect(200);
    await eventually(
      () => ingest.received.length,
      (n) => n === 1,
      15_000,
      'bundle posted after the outage',
    );
    expect(ingest.attempts).toBe(4);
    const [key] = await archived();
    expect(ingest.received[0].body).toEqual(await archivedBody(key));
    expect([...(await untar(ingest.received[0].body)).keys()].sort()).toEqual(['x/1.txt', 'x/2.txt', 'x/3.txt']);
  });

  it('spools a bundle larger than the memory threshold to disk, and concatenates when asked', async () => {
    await boot({ BUNDLE_SPOOL_MEMORY_MB: '0.01', BUNDLE_FORMAT: 'concat', BUNDLE_MAX_FILES: '2' });
    const big = [randomBytes(40_000), randomBytes(30_000)];
    await put(s3, bucket, 'c/1.bin', big[0]);
    await put(s3, bucket, 'c/2.bin', big[1]);
    await t.http().post('/api/v1/sync').expect(200);
    await eventually(
      () => ingest.received.length,
      (n) => n === 1,
      15_000,
      'bundle posted',
    );
    expect(gunzipSync(ingest.received[0].body)).toEqual(Buffer.concat(big));
    expect(ingest.received[0].headers['x-bundle-format']).toBe('concat');
  });

  it('archives a bundle larger than a part with a multipart upload', async () => {
    await boot({ BUNDLE_SPOOL_MEMORY_MB: '1', BUNDLE_MAX_FILES: '2' });
    const big = [randomBytes(6 * 1024 * 1024), randomBytes(5 * 1024 * 1024)];
    await put(s3, bucket, 'm/1.bin', big[0]);
    await put(s3, bucket, 'm/2.bin', big[1]);
    await t.http().post('/api/v1/sync').expect(200);
    await eventually(
      () => ingest.received.length,
      (n) => n === 1,
      30_000,
      'bundle posted',
    );
    const [key] = await archived();
    const stored = await archivedBody(key);
    expect(stored.length).toBeGreaterThan(8 * 1024 * 1024);
    // Buffer.equals: Jest's deep equality walks megabytes byte by byte.
    expect(stored.equals(ingest.received[0].body)).toBe(true);
    const files = await untar(stored);
    expect(files.get('m/1.bin')?.equals(big[0])).toBe(true);
    expect(files.get('m/2.bin')?.equals(big[1])).toBe(true);
    const head = await s3.send(new HeadObjectCommand({ Bucket: archive, Key: key }));
    expect(head.ETag).toMatch(/-2"$/); // two parts
  });

  it('refuses NIFI_ENDPOINT_URL without an archive bucket', async () => {
    await expect(bootApp({ S3_BUCKET_NAME: bucket, NIFI_ENDPOINT_URL: ingest.url })).rejects.toThrow(/ARCHIVE_BUCKET_NAME: is required/);
  });
});
