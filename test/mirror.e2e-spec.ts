import { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bootApp, eventually, filesUnder, TestApp, tempDir } from './support/app';
import { contentFor, emulatorEndpoint, newBucket, put, putMultipart, remove, testS3 } from './support/s3';
import { S3Proxy } from './support/s3-proxy';
import { notification } from './support/s3-events';
import { startConnectProxy } from './support/connect-proxy';
import { loopbackCertificate } from './support/tls';
import { ManualClock } from './support/manual-clock';
import { mirrorServiceEnv, startService } from './support/process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

interface SyncReport {
  run_id: string;
  status: string;
  run_status: string;
  message: string;
  processed_files: number;
  successful_operations: number;
  failed_operations: number;
  counts: Record<string, number>;
  sync_details: Array<{ operation: string; file_key: string; status: string; message?: string }>;
}

/** Keys chosen to hit every mapping rule: nesting, spaces, +, %, non-ASCII, mixed case and "_". */
const TREE = [
  'README.txt',
  'calls/2026/11/22/calls-0800.jsonl',
  'calls/2026/11/23/calls 0900.jsonl',
  'notes/café menu/menu du jour.txt',
  'reports/q3 summary/résumé+final.txt',
  'odd/100%.txt',
  'odd/a+b=c.txt',
  'odd/x&y<z>\'q"uote.txt',
  'Mixed/Upper.txt',
  'Mixed/lower.txt',
  'Mixed/_underscore.txt',
  'Mixed/Zeta.txt',
  '日本/データ.json',
];

describe('mirror engine (full sync against the S3 emulator)', () => {
  let s3: S3Client;
  let proxy: S3Proxy;
  let endpoint: string;
  let bucket: string;
  let t: TestApp;

  beforeAll(async () => {
    s3 = testS3();
    proxy = new S3Proxy(emulatorEndpoint());
    endpoint = await proxy.start();
  });
  afterAll(async () => {
    await proxy.stop();
    s3.destroy();
  });

  beforeEach(async () => {
    proxy.reset();
    bucket = await newBucket(s3);
  });
  afterEach(async () => {
    await t?.close();
  });

  async function boot(env: Record<string, string> = {}): Promise<TestApp> {
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: endpoint, ...env });
    return t;
  }

  async function seed(keys: string[]): Promise<void> {
    for (const key of keys) await put(s3, bucket, key, contentFor(key));
  }

  async function sync(query = ''): Promise<SyncReport> {
    const res = await t.http().post(`/api/v1/sync${query}`).expect(200);
    return res.body as SyncReport;
  }

  /**
   * Hands a request to the emulator, path style: with `virtualBucket`, the bucket the host named
   * goes in front of the path, as S3's front end does internally for a virtual-hosted request.
   */
  function forwardToEmulator(req: http.IncomingMessage, res: http.ServerResponse, virtualBucket?: string): void {
    const upstream = new URL(endpoint);
    const url = req.url ?? '/';
    const path = virtualBucket ? `/${virtualBucket}${url.startsWith('/?') || url === '/' ? url.slice(1) : url}` : url;
    const headers = { ...req.headers, host: upstream.host };
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(out);
  }

  async function expectMirrorMatches(keys: string[]): Promise<void> {
    expect(await filesUnder(t.mirrorDir)).toEqual([...keys].sort());
    for (const key of keys) expect(await readFile(join(t.mirrorDir, key))).toEqual(contentFor(key));
  }

  it("mirrors a nested tree with awkward names, byte for byte, with the objects' mtimes", async () => {
    await seed(TREE);
    await boot();
    const report = await sync();
    expect(report).toMatchObject({
      status: 'success',
      run_status: 'completed',
      processed_files: TREE.length,
      successful_operations: TREE.length,
      failed_operations: 0,
    });
    expect(report.message).toMatch(new RegExp(`^Synced ${TREE.length} of ${TREE.length} files in \\d+\\.\\d\\d seconds$`));
    expect(report.sync_details.every((d) => /^Downloaded successfully in \d+\.\d\d seconds; /.test(d.message ?? ''))).toBe(true);
    await expectMirrorMatches(TREE);
    const st = await stat(join(t.mirrorDir, 'README.txt'));
    expect(Math.abs(st.mtimeMs - Date.now())).toBeLessThan(120_000);
    expect(report.sync_details.every((d) => d.message?.includes('verified by md5'))).toBe(true);
  });

  it('downloads nothing on a second sync (no GetObject at all)', async () => {
    await seed(TREE);
    await boot();
    await sync();
    proxy.requests.length = 0;
    const report = await sync();
    expect(report.counts).toMatchObject({ listed: TREE.length, skipped: TREE.length, downloaded: 0, deleted: 0 });
    expect(report).toMatchObject({ status: 'success', processed_files: 0, message: expect.stringMatching(/^Synced 0 of 0 files in /) });
    expect(proxy.objectGets()).toBe(0);
    expect(proxy.requests.filter((r) => r.kind === 'object')).toEqual([]);
  });

  it('fetches a changed object again, and only that one', async () => {
    await seed(TREE);
    await boot();
    await sync();
    await put(s3, bucket, 'README.txt', 'new content');
    proxy.requests.length = 0;
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 1, skipped: TREE.length - 1 });
    expect(proxy.objectGets()).toBe(1);
    expect(await readFile(join(t.mirrorDir, 'README.txt'), 'utf8')).toBe('new content');
  });

  it('restores a mirrored file that was deleted locally', async () => {
    await seed(['a/b.txt', 'c.txt']);
    await boot();
    await sync();
    await import('node:fs/promises').then((fs) => fs.unlink(join(t.mirrorDir, 'a/b.txt')));
    const report = await sync();
    expect(report.counts.downloaded).toBe(1);
    await expectMirrorMatches(['a/b.txt', 'c.txt']);
  });

  it('deletes the local file of a removed object and prunes the emptied folder', async () => {
    await seed(['keep.txt', 'gone/deep/file.txt', 'gone2.txt']);
    await boot();
    await sync();
    await remove(s3, bucket, 'gone/deep/file.txt');
    const report = await sync();
    expect(report.counts).toMatchObject({ deleted: 1, toDelete: 1 });
    expect(report.sync_details).toContainEqual(
      expect.objectContaining({
        operation: 'delete',
        file_key: 'gone/deep/file.txt',
        status: 'success',
        message: expect.stringMatching(/^Deleted successfully in \d+\.\d\d seconds/),
      }),
    );
    await expectMirrorMatches(['keep.txt', 'gone2.txt']);
    expect(existsSync(join(t.mirrorDir, 'gone'))).toBe(false);
  });

  it('stops before deleting more than MAX_DELETE files, and says why', async () => {
    const keys = ['a.txt', 'b.txt', 'c.txt', 'd.txt'];
    await seed(keys);
    await boot({ MAX_DELETE: '2' });
    await sync();
    for (const k of ['a.txt', 'b.txt', 'c.txt']) await remove(s3, bucket, k);
    const report = await sync();
    expect(report.status).toBe('failed');
    expect(report.message).toBe('would delete 3 files, more than MAX_DELETE (2); nothing was deleted');
    await expectMirrorMatches(keys);
  });

  it('refuses to empty the mirror after an empty listing unless allowDeleteAll=true', async () => {
    await seed(['x/1.txt', 'x/2.txt']);
    await boot();
    await sync();
    await remove(s3, bucket, 'x/1.txt');
    await remove(s3, bucket, 'x/2.txt');
    const blocked = await sync();
    expect(blocked.status).toBe('failed');
    expect(blocked.message).toMatch(/would delete every mirrored file \(2\)/);
    expect(await filesUnder(t.mirrorDir)).toEqual(['x/1.txt', 'x/2.txt']);
    const allowed = await sync('?allowDeleteAll=true');
    expect(allowed).toMatchObject({ status: 'success', run_status: 'completed', counts: expect.objectContaining({ deleted: 2 }) });
    expect(await filesUnder(t.mirrorDir)).toEqual([]);
  });

  it('mirrors only what SYNC_INCLUDE / SYNC_EXCLUDE let through, without a GET for the rest', async () => {
    const kept = ['calls/2026/a.jsonl', 'calls/2026/b (1).jsonl', 'reports/q3.jsonl'];
    const left = ['calls/2026/a.partial.jsonl', 'scratch/x.jsonl', 'notes/readme.txt', 'deep/scratch/y.jsonl'];
    await seed([...kept, ...left]);
    await boot({ SYNC_INCLUDE: '*.jsonl', SYNC_EXCLUDE: '*.partial.jsonl,/scratch/' });
    const report = await sync();
    // deep/scratch/ is not excluded: /scratch/ is anchored at the top of the bucket.
    expect(report.counts).toMatchObject({ listed: 7, downloaded: 4, excluded: 3, failed: 0 });
    expect(report.message).toMatch(/^Synced 4 of 4 files/);
    await expectMirrorMatches([...kept, 'deep/scratch/y.jsonl']);
    for (const key of ['calls/2026/a.partial.jsonl', 'scratch/x.jsonl', 'notes/readme.txt']) expect(proxy.objectGets(key)).toBe(0);
    const config = await t.http().get('/api/v1/config').expect(200);
    expect(config.body.sync.filter).toEqual({ include: ['*.jsonl'], exclude: ['*.partial.jsonl', '/scratch/'] });
  });

  it("narrows a run by the request's include / exclude, and never deletes what the run's filter leaves out", async () => {
    await seed(['logs/a.log', 'logs/b.log', 'logs/c.tmp', 'other/d.log']);
    await boot();
    await sync();
    for (const key of ['logs/a.log', 'logs/c.tmp', 'other/d.log']) await remove(s3, bucket, key);
    await put(s3, bucket, 'logs/e.log', contentFor('logs/e.log'));
    await put(s3, bucket, 'other/f.log', contentFor('other/f.log'));
    const report = await sync('?include=/logs/&exclude=*.tmp');
    expect(report.counts).toMatchObject({ downloaded: 1, deleted: 1, excluded: 1 });
    expect(report.sync_details.map((d) => `${d.operation} ${d.file_key}`).sort()).toEqual(['delete logs/a.log', 'download logs/e.log']);
    // c.tmp (excluded) and other/d.log (not included) are gone from the bucket but stay on disk.
    expect(await filesUnder(t.mirrorDir)).toEqual(['logs/b.log', 'logs/c.tmp', 'logs/e.log', 'other/d.log']);
    expect(proxy.objectGets('other/f.log')).toBe(0);
  });

  it("weighs a filtered run's deletions against the files its filter covers: an empty listing under it deletes nothing", async () => {
    await seed(['x/1.log', 'x/2.log', 'x/a.txt', 'x/b.txt', 'x/c.txt']);
    await boot();
    await sync();
    await remove(s3, bucket, 'x/1.log');
    await remove(s3, bucket, 'x/2.log');
    const report = await sync('?include=*.log');
    expect(report.status).toBe('failed');
    expect(report.message).toMatch(/would delete every mirrored file \(2\)/);
    expect(await filesUnder(t.mirrorDir)).toEqual(['x/1.log', 'x/2.log', 'x/a.txt', 'x/b.txt', 'x/c.txt']);
  });

  it('reports objects archived in GLACIER / DEEP_ARCHIVE as archived without a GET, and fetches them once restored', async () => {
    const keys = ['hot.txt', 'cold/glacier.txt', 'cold/deep.txt', 'cold/thawing.txt', 'cold/tiered.txt', 'cold/instant.txt'];
    await seed(keys);
    proxy.archive.set('cold/glacier.txt', { storageClass: 'GLACIER' });
    proxy.archive.set('cold/deep.txt', { storageClass: 'DEEP_ARCHIVE' });
    proxy.archive.set('cold/thawing.txt', { storageClass: 'GLACIER', restore: 'restoring' });
    proxy.archive.set('cold/tiered.txt', { storageClass: 'INTELLIGENT_TIERING', tierArchived: true });
    proxy.archive.set('cold/instant.txt', { storageClass: 'GLACIER_IR' });
    await boot();
    const report = await sync();
    expect(report).toMatchObject({ status: 'success', failed_operations: 0 });
    expect(report.counts).toMatchObject({ downloaded: 2, archived: 4, failed: 0 });
    expect(report.sync_details).toEqual(
      expect.arrayContaining([
        {
          operation: 'skip',
          file_key: 'cold/glacier.txt',
          status: 'skipped',
          message: 'archived in GLACIER: restore it (RestoreObject) to mirror it',
        },
        {
          operation: 'skip',
          file_key: 'cold/thawing.txt',
          status: 'skipped',
          message: 'archived in GLACIER, restore in progress: fetched once it completes',
        },
        expect.objectContaining({
          file_key: 'cold/tiered.txt',
          status: 'skipped',
          message: expect.stringMatching(/^archived \(S3 answered InvalidObjectState\)/),
        }),
      ]),
    );
    for (const key of ['cold/glacier.txt', 'cold/deep.txt', 'cold/thawing.txt']) expect(proxy.objectGets(key)).toBe(0);
    // Intelligent-Tiering's archive tier shows only in the GET's answer: one GET, no retry.
    expect(proxy.objectGets('cold/tiered.txt')).toBe(1);
    expect(proxy.restoreStatusAsked).toBeGreaterThan(0);
    await expectMirrorMatches(['hot.txt', 'cold/instant.txt']);

    proxy.archive.set('cold/glacier.txt', { storageClass: 'GLACIER', restore: 'restored' });
    proxy.archive.delete('cold/tiered.txt');
    const restored = await sync();
    expect(restored.counts).toMatchObject({ downloaded: 2, archived: 2, failed: 0 });
    await expectMirrorMatches(['hot.txt', 'cold/instant.txt', 'cold/glacier.txt', 'cold/tiered.txt']);

    // Moved to Glacier after it was mirrored: unchanged, kept, never fetched again nor deleted.
    proxy.archive.set('hot.txt', { storageClass: 'DEEP_ARCHIVE' });
    proxy.requests.length = 0;
    const later = await sync();
    expect(later.counts).toMatchObject({ downloaded: 0, deleted: 0, archived: 2 });
    expect(proxy.objectGets('hot.txt')).toBe(0);
    expect(await filesUnder(t.mirrorDir)).toContain('hot.txt');
  });

  it('answers 400 naming a malformed include / exclude pattern, before any run starts', async () => {
    await boot();
    const res = await t.http().post('/api/v1/sync?exclude={a,b').expect(400);
    expect(res.body.message).toBe('filter pattern "{a,b": a "{" without its "}"');
    expect(res.body).toMatchObject({ statusCode: 400, details: { parameter: 'exclude' } });
    expect((await t.http().get('/api/v1/sync/runs').expect(200)).body).toEqual([]);
  });

  it('never takes a listing cut off in transit for the whole bucket: nothing is deleted, the next attempt reads it all', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `cut/${String(i).padStart(2, '0')}.txt`);
    await seed(keys);
    await boot();
    await sync();
    proxy.cutListings = 1;
    const report = await sync();
    expect(proxy.cutListings).toBe(0);
    expect(report.counts).toMatchObject({ listed: 20, deleted: 0, toDelete: 0 });
    await expectMirrorMatches(keys);
  });

  it('gives a stalled listing LIST_TIMEOUT_SECONDS, then lists again', async () => {
    const keys = ['stall/a.txt', 'stall/b.txt'];
    await seed(keys);
    await boot({ LIST_TIMEOUT_SECONDS: '1' });
    proxy.stallListings = 1;
    const report = await sync();
    expect(report).toMatchObject({ status: 'success', counts: expect.objectContaining({ listed: 2, downloaded: 2 }) });
    expect(proxy.requests.filter((r) => r.kind === 'list').length).toBe(2);
    await expectMirrorMatches(keys);
  });

  it('runs at most MAX_CONCURRENT_RUNS syncs of disjoint prefixes at once, answering one more 429 with the running ids', async () => {
    await seed(['p1/a.txt', 'p2/b.txt', 'p3/c.txt']);
    await boot({ MAX_CONCURRENT_RUNS: '2', LIST_TIMEOUT_SECONDS: '600' });
    proxy.stallListings = 2;
    const started = [];
    for (const prefix of ['p1/', 'p2/']) {
      started.push((await t.http().post(`/api/v1/sync?prefix=${prefix}&background=true`).expect(202)).body.run_id as string);
    }
    await eventually(
      () => proxy.requests.filter((r) => r.kind === 'list').length,
      (n) => n === 2,
      10_000,
      'both runs listing',
    );
    const refused = await t.http().post('/api/v1/sync?prefix=p3/').expect(429);
    expect(refused.body.message).toMatch(/2 syncs are running, the most MAX_CONCURRENT_RUNS \(2\) allows/);
    expect([...refused.body.details.running].sort()).toEqual([...started].sort());
  });

  it("signs with S3's time when the local clock is off by more than S3 allows: one refusal, then every request goes", async () => {
    const keys = ['skew/a.txt', 'skew/b.txt', 'skew/c.txt'];
    await seed(keys);
    const clock = new ManualClock();
    clock.advance(20 * 60_000);
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: endpoint }, { clock });
    proxy.maxSkewMs = 15 * 60_000;
    const report = (await t.http().post('/api/v1/sync').expect(200)).body as SyncReport;
    expect(report).toMatchObject({ status: 'success', counts: expect.objectContaining({ listed: 3, downloaded: 3 }) });
    expect(proxy.skewed).toBe(1);
    await expectMirrorMatches(keys);
  });

  it.each(['authorization-header', 'permanent-redirect'] as const)(
    'follows a bucket in another region than AWS_REGION once (%s) and signs every later request for it, HEADs included',
    async (answer) => {
      const MiB = 1024 * 1024;
      await seed(['a.txt', 'b/c.txt']);
      await put(s3, bucket, 'big.bin', Buffer.alloc(2 * MiB + 7, 1));
      proxy.bucketRegion = { region: 'eu-central-2', answer };
      await boot({ AWS_REGION: 'us-east-1', MULTIPART_THRESHOLD_MB: '1', MULTIPART_CHUNK_MB: '1' });
      const report = await sync();
      expect(report.counts).toMatchObject({ downloaded: 3, failed: 0 });
      expect(await filesUnder(t.mirrorDir)).toEqual(['a.txt', 'b/c.txt', 'big.bin']);
      expect(await readFile(join(t.mirrorDir, 'b/c.txt'))).toEqual(contentFor('b/c.txt'));
      expect(proxy.wrongRegion).toEqual([{ method: 'GET', kind: 'list', region: 'us-east-1' }]);
      expect(proxy.requests.some((r) => r.method === 'HEAD' && r.key === 'big.bin')).toBe(true);
      const again = await sync();
      expect(again.counts).toMatchObject({ skipped: 3, failed: 0 });
      expect(proxy.wrongRegion).toHaveLength(1);
    },
  );

  it('takes fresh credentials from the provider before they expire, in the middle of a sync', async () => {
    // A container credentials endpoint (as ECS gives a task role) issuing credentials that expire
    // 5 min 1 s after issue: the SDK's provider refreshes within 5 minutes of expiry, so from one
    // second on every request must be signed with newly fetched ones.
    const issued = new Map<string, { token: string; expiresAt: number }>();
    const creds = http.createServer((_req, res) => {
      const n = issued.size;
      const expiresAt = Date.now() + 5 * 60_000 + 1000;
      const id = `ASIAROTATING${String(n).padStart(8, '0')}`;
      issued.set(id, { token: `token-${n}`, expiresAt });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          AccessKeyId: id,
          SecretAccessKey: `secret-${n}`,
          Token: `token-${n}`,
          Expiration: new Date(expiresAt).toISOString(),
        }),
      );
    });
    await new Promise<void>((resolve) => creds.listen(0, '127.0.0.1', resolve));
    try {
      const keys = Array.from({ length: 12 }, (_, i) => `rotating/${i}.txt`);
      await seed(keys);
      // Credentials are taken here for 3 s after issue (1 s fresh + 2 s of slack for a loaded machine),
      // while the sync lasts about 5 s: credentials kept from its start would be refused.
      proxy.acceptsAccessKey = (id, token) => {
        const c = issued.get(id);
        return c !== undefined && c.token === token && Date.now() < c.expiresAt - 5 * 60_000 + 2000;
      };
      for (const key of keys.slice(0, 8)) proxy.stall.set(key, 1);
      proxy.stallMs = 1200;
      const service = await startService({
        ...mirrorServiceEnv(bucket, 'rotating'),
        S3_ENDPOINT: endpoint,
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_REGION: 'us-east-1',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(creds.address() as AddressInfo).port}/v2/credentials`,
        SYNC_CONCURRENCY: '2',
      });
      try {
        const report = (await (await fetch(`${service.url}/api/v1/sync`, { method: 'POST' })).json()) as SyncReport;
        expect(report).toMatchObject({ status: 'success', counts: expect.objectContaining({ downloaded: 12, failed: 0 }) });
        expect(new Set(proxy.accessKeys).size).toBeGreaterThanOrEqual(2);
      } finally {
        service.child.kill('SIGTERM');
        await service.exited;
      }
    } finally {
      creds.close();
    }
  });

  it('keeps a file an event brought in while a full sync ran, though the listing it already had lacks it', async () => {
    await seed(['m/1.txt', 'z/2.txt']);
    await boot({ WEBHOOK_AUTH: 'none' });
    // The run's listing is complete, and its last download held, when the object comes and its event with it.
    proxy.stall.set('z/2.txt', 1);
    proxy.stallMs = 1500;
    const started = (await t.http().post('/api/v1/sync?background=true').expect(202)).body as { run_id: string };
    await eventually(() => proxy.requests.some((r) => r.kind === 'object' && r.key === 'z/2.txt'), Boolean, 10_000, 'the held GET');
    const body = contentFor('a/0.txt');
    await put(s3, bucket, 'a/0.txt', body);
    const etag = createHash('md5').update(body).digest('hex');
    await t
      .http()
      .post('/api/v1/s3-notification')
      .send(notification({ bucket, key: 'a/0.txt', op: 'put', size: body.length, etag }))
      .expect(202);
    await eventually(() => existsSync(join(t.mirrorDir, 'a/0.txt')), Boolean, 10_000, 'the file of the event');
    const run = await eventually(
      async () => (await t.http().get(`/api/v1/sync/runs/${started.run_id}`).expect(200)).body as SyncReport,
      (r) => r.run_status !== 'running',
      15_000,
      'the end of the run',
    );
    expect(run.counts).toMatchObject({ downloaded: 2, toDelete: 0, deleted: 0 });
    await expectMirrorMatches(['a/0.txt', 'm/1.txt', 'z/2.txt']);
  });

  it('keeps every file when the listing arrives out of byte order, in small pages', async () => {
    await seed(TREE);
    await boot();
    await sync();
    proxy.listing = { order: 'reverse', pageSize: 2 };
    const reversed = await sync();
    expect(reversed.counts).toMatchObject({ listed: TREE.length, deleted: 0, toDelete: 0, skipped: TREE.length });
    proxy.listing = { order: 'shuffle', pageSize: 3 };
    await remove(s3, bucket, 'Mixed/Zeta.txt');
    const shuffled = await sync();
    expect(shuffled.counts).toMatchObject({ listed: TREE.length - 1, deleted: 1 });
    await expectMirrorMatches(TREE.filter((k) => k !== 'Mixed/Zeta.txt'));
  });

  it('plans without touching the disk on a dry run', async () => {
    await seed(['a.txt', 'b/c.txt']);
    await boot();
    const report = await sync('?dryRun=true');
    expect(report).toMatchObject({
      status: 'success',
      processed_files: 2,
      counts: expect.objectContaining({ toDownload: 2, downloaded: 0 }),
    });
    expect(report.sync_details.map((d) => [d.operation, d.status])).toEqual([
      ['download', 'planned'],
      ['download', 'planned'],
    ]);
    expect(await filesUnder(t.mirrorDir)).toEqual([]);
    expect(proxy.objectGets()).toBe(0);
    await sync();
    await remove(s3, bucket, 'a.txt');
    const dryDelete = await sync('?dryRun=true');
    expect(dryDelete.sync_details).toEqual([expect.objectContaining({ operation: 'delete', file_key: 'a.txt', status: 'planned' })]);
    expect(await filesUnder(t.mirrorDir)).toEqual(['a.txt', 'b/c.txt']);
  });

  it('detects a corrupted download, retries it, and never commits bad bytes', async () => {
    await seed(['good.txt', 'flaky.txt', 'bad.txt']);
    await boot({ RETRY_ATTEMPTS: '2' });
    proxy.corrupt.set('flaky.txt', 1);
    proxy.corrupt.set('bad.txt', 100);
    const report = await sync();
    expect(report).toMatchObject({ status: 'partial', run_status: 'completed_with_errors', processed_files: 3, successful_operations: 2 });
    expect(report.message).toMatch(/^Synced 2 of 3 files in /);
    expect(report.counts).toMatchObject({ downloaded: 2, failed: 1 });
    const bad = report.sync_details.find((d) => d.file_key === 'bad.txt');
    expect(bad).toMatchObject({ status: 'failed', message: expect.stringMatching(/md5 mismatch/) });
    expect(proxy.objectGets('bad.txt')).toBe(3);
    expect(proxy.objectGets('flaky.txt')).toBe(2);
    await expectMirrorMatches(['good.txt', 'flaky.txt']);
    expect(readdirSync(t.mirrorDir).filter((n) => n.includes('s3sync-partial'))).toEqual([]);
  });

  it('keeps the previous complete version when the new one arrives corrupted', async () => {
    await seed(['doc.txt']);
    await boot({ RETRY_ATTEMPTS: '0' });
    await sync();
    await put(s3, bucket, 'doc.txt', 'version two');
    proxy.corrupt.set('doc.txt', 100);
    const report = await sync();
    expect(report.counts.failed).toBe(1);
    expect(await readFile(join(t.mirrorDir, 'doc.txt'))).toEqual(contentFor('doc.txt'));
    proxy.corrupt.clear();
    await sync();
    expect(await readFile(join(t.mirrorDir, 'doc.txt'), 'utf8')).toBe('version two');
  });

  it('retries a download that hits a server error', async () => {
    await seed(['a.txt']);
    await boot({ RETRY_ATTEMPTS: '3' });
    proxy.fail.set('a.txt', 2);
    const report = await sync();
    expect(report.counts.downloaded).toBe(1);
    expect(proxy.objectGets('a.txt')).toBe(3);
  });

  it('retries each outside call at one layer: a failing range or object costs RETRY_ATTEMPTS + 1 GETs, not attempts x attempts', async () => {
    const MiB = 1024 * 1024;
    await put(s3, bucket, 'layers/ranged.bin', Buffer.alloc(3 * MiB, 2));
    await seed(['layers/whole.txt']);
    proxy.failRanges.set(`layers/ranged.bin bytes=${MiB}-${2 * MiB - 1}`, 100);
    proxy.fail.set('layers/whole.txt', 100);
    await boot({ RETRY_ATTEMPTS: '2', MULTIPART_THRESHOLD_MB: '1', MULTIPART_CHUNK_MB: '1', MULTIPART_CONCURRENCY: '1' });
    const report = await sync();
    expect(report.counts).toMatchObject({ failed: 2, downloaded: 0 });
    const gets = (key: string, range?: string) =>
      proxy.requests.filter((r) => r.method === 'GET' && r.key === key && (range === undefined || r.range === range)).length;
    expect(gets('layers/ranged.bin', `bytes=${MiB}-${2 * MiB - 1}`)).toBe(3);
    // The object was not started again: its first range was fetched once.
    expect(gets('layers/ranged.bin', `bytes=0-${MiB - 1}`)).toBe(1);
    expect(gets('layers/whole.txt')).toBe(3);
    expect(await filesUnder(t.mirrorDir)).toEqual([]);
  });

  it('refuses hostile keys and writes nothing outside the mirror', async () => {
    const outside = tempDir('outside');
    const mirror = join(outside, 'mirror');
    const hostile = ['../escape.txt', 'a/../../escape2.txt', '/abs.txt', 'back\\slash.txt', 'a//b.txt', './dot.txt'];
    for (const key of hostile) await put(s3, bucket, key, 'evil');
    await seed(['fine.txt']);
    await boot({ LOCAL_DOWNLOAD_DIR: mirror });
    const report = await sync();
    expect(report.status).toBe('partial');
    expect(report.counts).toMatchObject({ refused: hostile.length, downloaded: 1 });
    const refused = report.sync_details
      .filter((d) => d.operation === 'refuse')
      .map((d) => d.file_key)
      .sort();
    expect(refused).toEqual([...hostile].sort());
    expect(await filesUnder(outside)).toEqual(['mirror/fine.txt']);
  });

  it('does not follow a symlink planted in the mirror out of it', async () => {
    const outside = tempDir('target');
    await seed(['link/evil.txt', 'ok.txt']);
    await boot();
    await mkdir(t.mirrorDir, { recursive: true });
    await symlink(outside, join(t.mirrorDir, 'link'));
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 1, failed: 1 });
    expect(await filesUnder(outside)).toEqual([]);
  });

  it('reports a file/folder clash instead of crashing', async () => {
    await seed(['clash', 'clash/inner.txt', 'other.txt']);
    await boot();
    const report = await sync();
    expect(report.status).toBe('partial');
    expect(report.counts).toMatchObject({ failed: 1, downloaded: 2 });
    const failed = report.sync_details.find((d) => d.status === 'failed');
    expect(failed?.message).toMatch(/file\/folder clash/);
    // The next run decides the clash from the disk: reported again, without fetching the object.
    proxy.requests.length = 0;
    const again = await sync();
    expect(again).toMatchObject({ run_status: 'completed_with_errors', counts: expect.objectContaining({ failed: 1, downloaded: 0 }) });
    expect(again.sync_details).toEqual([expect.objectContaining({ file_key: failed?.file_key, message: failed?.message })]);
    expect(proxy.objectGets()).toBe(0);
  });

  it('skips folder markers and objects above MAX_FILE_SIZE_MB', async () => {
    await put(s3, bucket, 'folder/', '');
    await put(s3, bucket, 'big.bin', Buffer.alloc(2 * 1024 * 1024, 1));
    await seed(['small.txt']);
    await boot({ MAX_FILE_SIZE_MB: '1' });
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 1, skipped: 1, failed: 0 });
    expect(report.sync_details).toContainEqual(
      expect.objectContaining({ file_key: 'big.bin', status: 'skipped', message: expect.stringMatching(/exceeds MAX_FILE_SIZE_MB/) }),
    );
    expect(await filesUnder(t.mirrorDir)).toEqual(['small.txt']);
  });

  it('adopts an identical local file (size and mtime) without downloading it', async () => {
    await seed(['pre.txt']);
    await boot();
    const listed = await t.http().get('/api/v1/files?source=s3').expect(200);
    const lastModified = new Date(listed.body.files[0].lastModified as string);
    await mkdir(t.mirrorDir, { recursive: true });
    await writeFile(join(t.mirrorDir, 'pre.txt'), contentFor('pre.txt'));
    await utimes(join(t.mirrorDir, 'pre.txt'), lastModified, lastModified);
    const report = await sync();
    expect(report.counts).toMatchObject({ skipped: 1, downloaded: 0 });
    expect(report.sync_details[0].message).toMatch(/^adopted/);
    expect(proxy.objectGets()).toBe(0);
  });

  it('syncs only the requested prefix', async () => {
    await seed(['a/1.txt', 'a/2.txt', 'b/1.txt']);
    await boot();
    const report = await sync('?prefix=a/');
    expect(report.counts.downloaded).toBe(2);
    expect(await filesUnder(t.mirrorDir)).toEqual(['a/1.txt', 'a/2.txt']);
    await sync('?prefix=b/');
    expect(await filesUnder(t.mirrorDir)).toEqual(['a/1.txt', 'a/2.txt', 'b/1.txt']);
  });

  it('refuses a prefix outside S3_PREFIX with 400', async () => {
    await boot({ S3_PREFIX: 'data/' });
    const res = await t.http().post('/api/v1/sync?prefix=other/').expect(400);
    expect(res.body.message).toMatch(/prefix must lie under S3_PREFIX/);
  });

  it('downloads a large multipart object as parallel ranges', async () => {
    const MiB = 1024 * 1024;
    const body = Buffer.alloc(9 * MiB + 123); // fauxqs caps a single PUT near 10 MiB
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
    await putMultipart(s3, bucket, 'large/multi.bin', body, 5 * MiB);
    await put(s3, bucket, 'large/single.bin', body);
    await boot({ MULTIPART_THRESHOLD_MB: '1', MULTIPART_CHUNK_MB: '2', MULTIPART_CONCURRENCY: '4' });
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 2, failed: 0 });
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(digest(await readFile(join(t.mirrorDir, 'large/multi.bin')))).toBe(digest(body));
    expect(digest(await readFile(join(t.mirrorDir, 'large/single.bin')))).toBe(digest(body));
    const ranged = proxy.requests.filter((r) => r.kind === 'object' && r.method === 'GET' && r.range);
    expect(ranged.length).toBe(2 * Math.ceil(body.length / (2 * MiB)));
    // The emulator cannot tell the part size (no HEAD ?partNumber), so the multipart object is
    // checked by size; the single-part one is read back and checked by MD5.
    expect(report.sync_details.find((d) => d.file_key === 'large/multi.bin')?.message).toMatch(/verified by size/);
    expect(report.sync_details.find((d) => d.file_key === 'large/single.bin')?.message).toMatch(/verified by md5/);
  });

  it('takes chunked answers (no Content-Length), checks their length against the object, and retries one that runs past it', async () => {
    const MiB = 1024 * 1024;
    const body = Buffer.alloc(9 * MiB + 123);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
    await putMultipart(s3, bucket, 'big/multi.bin', body, 5 * MiB);
    await put(s3, bucket, 'big/whole.bin', body.subarray(0, 3 * MiB));
    await put(s3, bucket, 'small/a.txt', 'small and chunked');
    await put(s3, bucket, 'small/b.txt', 'small, chunked, too long once');
    for (const key of ['big/multi.bin', 'big/whole.bin', 'small/a.txt', 'small/b.txt']) proxy.chunked.set(key, 100);
    proxy.overlong.set('small/b.txt', 1);
    proxy.overlong.set('big/whole.bin', 1);
    // Two ranges of the size-verified multipart object run past their end: neither may spill into its neighbour.
    proxy.overlong.set('big/multi.bin', 2);
    await boot({ MULTIPART_THRESHOLD_MB: '4', MULTIPART_CHUNK_MB: '2', MULTIPART_CONCURRENCY: '4', RETRY_BASE_MS: '10' });
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 4, failed: 0 });
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(digest(await readFile(join(t.mirrorDir, 'big/multi.bin')))).toBe(digest(body));
    expect(digest(await readFile(join(t.mirrorDir, 'big/whole.bin')))).toBe(digest(body.subarray(0, 3 * MiB)));
    expect(await readFile(join(t.mirrorDir, 'small/a.txt'), 'utf8')).toBe('small and chunked');
    expect(await readFile(join(t.mirrorDir, 'small/b.txt'), 'utf8')).toBe('small, chunked, too long once');
    expect(proxy.objectGets('small/a.txt')).toBe(1);
    expect(proxy.objectGets('small/b.txt')).toBe(2);
    expect(proxy.objectGets('big/whole.bin')).toBe(2);
    // A range that runs past its end fails its attempt of the object, which starts again: never committed.
    const rangedGets = proxy.requests.filter((r) => r.key === 'big/multi.bin' && r.method === 'GET' && r.range).length;
    expect(rangedGets).toBeGreaterThan(Math.ceil(body.length / (2 * MiB)));
  });

  it('detects corruption in a whole object above the in-memory size (hashed by a worker)', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
    await put(s3, bucket, 'whole.bin', body);
    await put(s3, bucket, 'whole-ok.bin', body);
    await boot({ RETRY_ATTEMPTS: '0' });
    proxy.corrupt.set('whole.bin', 1);
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 1, failed: 1 });
    expect(report.sync_details.find((d) => d.file_key === 'whole.bin')?.message).toMatch(/md5 mismatch/);
    expect(report.sync_details.find((d) => d.file_key === 'whole-ok.bin')?.message).toMatch(/verified by md5/);
    expect(existsSync(join(t.mirrorDir, 'whole.bin'))).toBe(false);
    expect(await readFile(join(t.mirrorDir, 'whole-ok.bin'))).toEqual(body);
    expect(proxy.objectGets('whole.bin')).toBe(1);
  });

  it('detects corruption in one range of a large object', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    await put(s3, bucket, 'big.bin', body);
    await boot({ MULTIPART_THRESHOLD_MB: '1', MULTIPART_CHUNK_MB: '1', RETRY_ATTEMPTS: '0' });
    proxy.corrupt.set('big.bin', 1);
    const report = await sync();
    expect(report.counts.failed).toBe(1);
    expect(report.sync_details[0].message).toMatch(/md5 mismatch/);
    expect(existsSync(join(t.mirrorDir, 'big.bin'))).toBe(false);
  });

  it('verifies a multipart object by its ETag when S3 tells the part size, and catches a bad part', async () => {
    const MiB = 1024 * 1024;
    const body = Buffer.alloc(12 * MiB);
    for (let i = 0; i < body.length; i += 512) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    await putMultipart(s3, bucket, 'mp/ok.bin', body, 5 * MiB);
    await putMultipart(s3, bucket, 'mp/bad.bin', body, 5 * MiB);
    proxy.partSizes.set('mp/ok.bin', 5 * MiB);
    proxy.partSizes.set('mp/bad.bin', 5 * MiB);
    await boot({ MULTIPART_THRESHOLD_MB: '1', RETRY_ATTEMPTS: '0' });
    proxy.corrupt.set('mp/bad.bin', 1);
    const report = await sync();
    expect(report.sync_details.find((d) => d.file_key === 'mp/ok.bin')?.message).toMatch(/verified by multipart-etag/);
    expect(report.sync_details.find((d) => d.file_key === 'mp/bad.bin')).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/multipart-etag mismatch/),
    });
    // The ranges follow the parts (5 + 5 + 2 MiB), so each part's MD5 can be checked.
    const ranges = proxy.requests
      .filter((r) => r.key === 'mp/ok.bin' && r.range)
      .map((r) => r.range)
      .sort();
    expect(ranges).toEqual([`bytes=0-${5 * MiB - 1}`, `bytes=${10 * MiB}-${12 * MiB - 1}`, `bytes=${5 * MiB}-${10 * MiB - 1}`]);
    expect(existsSync(join(t.mirrorDir, 'mp/bad.bin'))).toBe(false);
  });

  it('verifies by the S3 checksum when the ETag is not an MD5 (SSE-KMS), and catches a mismatch', async () => {
    const { crc32 } = await import('node:zlib');
    const b64 = (n: number): string => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      return b.toString('base64');
    };
    await seed(['kms/good.txt', 'kms/bad.txt']);
    const sse = { 'x-amz-server-side-encryption': 'aws:kms' };
    proxy.extraHeaders.set('kms/good.txt', { ...sse, 'x-amz-checksum-crc32': b64(crc32(contentFor('kms/good.txt'))) });
    proxy.extraHeaders.set('kms/bad.txt', { ...sse, 'x-amz-checksum-crc32': b64(crc32('something else')) });
    await boot({ RETRY_ATTEMPTS: '0' });
    const report = await sync();
    expect(report.sync_details.find((d) => d.file_key === 'kms/good.txt')?.message).toMatch(/verified by crc32/);
    expect(report.sync_details.find((d) => d.file_key === 'kms/bad.txt')).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/crc32 mismatch/),
    });
    await expectMirrorMatches(['kms/good.txt']);
  });

  it('verifies by SHA-512 and MD5 checksums too, and by the fastest one when an object carries several', async () => {
    const sha512 = (b: Buffer | string): string => createHash('sha512').update(b).digest('base64');
    const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('base64');
    await seed(['kms/sha512.txt', 'kms/md5.txt', 'kms/both.txt', 'kms/bad512.txt']);
    const sse = { 'x-amz-server-side-encryption': 'aws:kms' };
    proxy.extraHeaders.set('kms/sha512.txt', { ...sse, 'x-amz-checksum-sha512': sha512(contentFor('kms/sha512.txt')) });
    proxy.extraHeaders.set('kms/md5.txt', { ...sse, 'x-amz-checksum-md5': md5(contentFor('kms/md5.txt')) });
    proxy.extraHeaders.set('kms/both.txt', {
      ...sse,
      'x-amz-checksum-sha512': sha512(contentFor('kms/both.txt')),
      'x-amz-checksum-md5': md5(contentFor('kms/both.txt')),
    });
    proxy.extraHeaders.set('kms/bad512.txt', { ...sse, 'x-amz-checksum-sha512': sha512('something else') });
    await boot({ RETRY_ATTEMPTS: '0' });
    const report = await sync();
    const message = (key: string): string | undefined => report.sync_details.find((d) => d.file_key === key)?.message;
    expect(message('kms/sha512.txt')).toMatch(/verified by sha512$/);
    expect(message('kms/md5.txt')).toMatch(/verified by checksum-md5$/);
    expect(message('kms/both.txt')).toMatch(/verified by checksum-md5$/);
    expect(message('kms/bad512.txt')).toMatch(/sha512 mismatch/);
    await expectMirrorMatches(['kms/sha512.txt', 'kms/md5.txt', 'kms/both.txt']);
  });

  it('times out a stalled download and succeeds on the retry', async () => {
    await seed(['slow.txt']);
    await boot({ DOWNLOAD_TIMEOUT_SECONDS: '2', RETRY_ATTEMPTS: '1' });
    proxy.stallMs = 4000;
    proxy.stall.set('slow.txt', 1);
    const report = await sync();
    expect(report.sync_details).toEqual([expect.objectContaining({ status: 'success' })]);
    expect(report.counts).toMatchObject({ downloaded: 1, failed: 0 });
    expect(proxy.objectGets('slow.txt')).toBe(2);
    await expectMirrorMatches(['slow.txt']);
  });

  it('answers 409 with the running run id to an overlapping sync, and runs in the background', async () => {
    await seed(Array.from({ length: 30 }, (_, i) => `bulk/${i}.txt`));
    await boot({ SYNC_CONCURRENCY: '1' });
    // One slow object keeps the run going for sure while the second request comes in.
    proxy.stallMs = 1500;
    proxy.stall.set('bulk/0.txt', 1);
    const started = await t.http().post('/api/v1/sync?background=true').expect(202);
    const runId = started.body.run_id as string;
    expect(started.body.status_url).toBe(`/api/v1/sync/runs/${runId}`);
    const conflict = await t.http().post('/api/v1/sync?prefix=bulk/').expect(409);
    expect(conflict.body).toMatchObject({ statusCode: 409, details: { runId } });
    const run = await eventually(
      async () => (await t.http().get(`/api/v1/sync/runs/${runId}`).expect(200)).body as { status: string },
      (r) => r.status !== 'running',
      15_000,
      'the background run to finish',
    );
    expect(run).toMatchObject({ status: 'success', run_status: 'completed', counts: expect.objectContaining({ downloaded: 30 }) });
    const items = await t.http().get(`/api/v1/sync/runs/${runId}/items?offset=25&limit=10`).expect(200);
    expect(items.body.items).toHaveLength(5);
  });

  it('runs on the cron schedule, never overlapping itself, and shows live progress meanwhile', async () => {
    await seed(['cron/a.txt', 'cron/b.txt']);
    proxy.stallMs = 3000;
    proxy.stall.set('cron/a.txt', 1);
    await boot({ ENABLE_PERIODIC_SYNC: 'true', SYNC_CRON: '* * * * * *', SYNC_CONCURRENCY: '1' });
    type Progress = { runId: string; counts: Record<string, number>; listing: boolean };
    // A run that has finished listing (its plan is complete) and is still downloading.
    const progress = await eventually(
      async () => (await t.http().get('/api/v1/stats').expect(200)).body.running as Progress[],
      (p) => p.length === 1 && !p[0].listing,
      15_000,
      'a running sync past its listing',
    );
    expect(progress).toEqual([expect.objectContaining({ counts: expect.objectContaining({ listed: 2, toDownload: 2 }), listing: false })]);
    type Run = { id: string; trigger: string; status: string; startedAt: string; finishedAt?: string };
    const runs = await eventually(
      async () => (await t.http().get('/api/v1/sync/runs').expect(200)).body as Run[],
      (r) => r.filter((x) => x.status !== 'running').length >= 2,
      20_000,
      'two finished scheduled runs',
    );
    const finished = runs.filter((r) => r.status !== 'running').reverse();
    expect(finished.length).toBeGreaterThanOrEqual(2);
    expect(finished.every((r) => r.trigger === 'schedule' && r.status === 'completed')).toBe(true);
    expect(finished[0].id).toBe(progress[0].runId);
    // The first run took over 3 s while the cron fired every second: the next run started after it ended.
    expect(Date.parse(finished[1].startedAt)).toBeGreaterThanOrEqual(Date.parse(finished[0].finishedAt!));
    await expectMirrorMatches(['cron/a.txt', 'cron/b.txt']);
  });

  it("reaches the bucket through the SDKs' AWS_ENDPOINT_URL_S3 when S3_ENDPOINT is not set, listings and GETs alike", async () => {
    await seed(['via/sdk-setting.txt']);
    t = await bootApp({ S3_BUCKET_NAME: bucket, AWS_ENDPOINT_URL_S3: endpoint });
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 1, failed: 0 });
    await expectMirrorMatches(['via/sdk-setting.txt']);
    expect(proxy.requests.filter((r) => r.kind === 'list')).not.toHaveLength(0);
    expect(proxy.objectGets('via/sdk-setting.txt')).toBe(1);
  });

  it('reaches an HTTPS endpoint signed by a private CA given in AWS_CA_BUNDLE, for the signed GETs and the SDK alike', async () => {
    const dir = tempDir('ca');
    const { key, cert, certPath } = loopbackCertificate(dir, 's3.test');
    // TLS in front of the proxy, as a gateway with a private certificate would stand in front of S3.
    const upstream = new URL(endpoint);
    const front = https.createServer({ key, cert }, (req, res) => {
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(out);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const httpsEndpoint = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
    try {
      await seed(['tls/a.txt', 'tls/b.txt']);
      t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: httpsEndpoint, AWS_CA_BUNDLE: certPath });
      const report = await sync();
      expect(report.counts).toMatchObject({ downloaded: 2, failed: 0 });
      await expectMirrorMatches(['tls/a.txt', 'tls/b.txt']);
      // The health check's HeadBucket goes through the SDK, over the same trust.
      expect((await t.http().get('/api/v1/health').expect(200)).body).toMatchObject({ status: 'healthy', s3_connection: true });
      await t.close();

      t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: httpsEndpoint });
      const untrusted = await sync();
      expect(untrusted.status).toBe('failed');
      expect(untrusted.message).toMatch(/self.signed|certificate/i);
    } finally {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  it('S3_DATA_PATH=sdk: lists and fetches through the AWS SDK, ranges and chunked answers included, with the same results', async () => {
    const MiB = 1024 * 1024;
    const big = contentFor('sdk/big.bin', 3 * MiB + 5);
    await seed(['sdk/a.txt', 'sdk/b.txt', 'sdk/chunked.txt']);
    await put(s3, bucket, 'sdk/big.bin', big);
    proxy.chunked.set('sdk/chunked.txt', 100);
    await boot({ S3_DATA_PATH: 'sdk', MULTIPART_THRESHOLD_MB: '1', MULTIPART_CHUNK_MB: '1' });
    const report = await sync();
    expect(report.counts).toMatchObject({ downloaded: 4, failed: 0 });
    expect(await filesUnder(t.mirrorDir)).toEqual(['sdk/a.txt', 'sdk/b.txt', 'sdk/big.bin', 'sdk/chunked.txt']);
    for (const key of ['sdk/a.txt', 'sdk/b.txt', 'sdk/chunked.txt'])
      expect(await readFile(join(t.mirrorDir, key))).toEqual(contentFor(key));
    expect((await readFile(join(t.mirrorDir, 'sdk/big.bin'))).equals(big)).toBe(true);
    expect(proxy.requests.filter((r) => r.key === 'sdk/big.bin' && r.range).length).toBeGreaterThanOrEqual(3);
    const traffic = proxy.requests.filter((r) => r.kind !== 'bucket');
    expect(traffic.length).toBeGreaterThan(0);
    expect(traffic.every((r) => /aws-sdk-js/.test(r.userAgent ?? ''))).toBe(true);
    // The decision and its reason are part of the configuration shown.
    expect((await t.http().get('/api/v1/config').expect(200)).body.s3.dataPath).toEqual({ kind: 'sdk', reason: 'S3_DATA_PATH=sdk' });

    await remove(s3, bucket, 'sdk/b.txt');
    proxy.requests.length = 0;
    const again = await sync();
    expect(again.counts).toMatchObject({ downloaded: 0, deleted: 1, skipped: 3 });
    expect(proxy.objectGets()).toBe(0);
  });

  it('goes through HTTPS_PROXY with CONNECT tunnels, virtual-hosted, for the signed GETs and the SDK alike; NO_PROXY goes direct', async () => {
    const dir = tempDir('proxy');
    // s3.proxied.test resolves nowhere: only the proxy, which opens every tunnel to the front, reaches it.
    const { key, cert, certPath } = loopbackCertificate(dir, 's3.proxied.test', ['s3.proxied.test', '*.s3.proxied.test']);
    const seen: Array<{ host: string; method: string; url: string }> = [];
    const front = https.createServer({ key, cert }, (req, res) => {
      const host = req.headers.host ?? '';
      seen.push({ host, method: req.method ?? '', url: req.url ?? '' });
      // A virtual-hosted request, handed to the emulator path style, as S3's front end does internally.
      const virtualBucket = /^(.+)\.s3\.proxied\.test$/.exec(host)?.[1];
      forwardToEmulator(req, res, virtualBucket);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const forward = await startConnectProxy({
      to: () => (front.address() as AddressInfo).port,
      refuse: (req) =>
        req.headers['proxy-authorization'] === `Basic ${Buffer.from('relay:s3cr et').toString('base64')}`
          ? undefined
          : 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="s3"\r\n\r\n',
    });
    const tunnels = forward.connects;
    const proxyUrl = forward.url.replace('http://', 'http://relay:s3cr%20et@');
    const viaProxy = {
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: 'https://s3.proxied.test',
      S3_FORCE_PATH_STYLE: 'false',
      AWS_CA_BUNDLE: certPath,
    };
    try {
      await seed(['proxied/a.txt', 'proxied/b c+d.txt']);
      t = await bootApp({ ...viaProxy, HTTPS_PROXY: proxyUrl });
      const report = await sync();
      expect(report.counts).toMatchObject({ downloaded: 2, failed: 0 });
      await expectMirrorMatches(['proxied/a.txt', 'proxied/b c+d.txt']);
      // The SDK's HeadBucket takes the same way.
      expect((await t.http().get('/api/v1/health').expect(200)).body).toMatchObject({ status: 'healthy', s3_connection: true });
      expect(new Set(tunnels.map((x) => x.url))).toEqual(new Set([`${bucket}.s3.proxied.test:443`]));
      expect(seen.every((r) => r.host === `${bucket}.s3.proxied.test`)).toBe(true);
      expect(
        seen
          .filter((r) => r.method === 'GET' && r.url.startsWith('/proxied/'))
          .map((r) => r.url)
          .sort(),
      ).toEqual(['/proxied/a.txt', '/proxied/b%20c%2Bd.txt']);
      expect(seen.some((r) => r.method === 'HEAD' && r.url === '/')).toBe(true);
      // The configuration shows where the proxy is, never its credentials.
      const shown = JSON.stringify((await t.http().get('/api/v1/config').expect(200)).body);
      expect(shown).toContain(new URL(forward.url).host);
      expect(shown).not.toContain('s3cr');
      await t.close();

      // Without credentials the proxy's 407 is the reason the sync gives.
      t = await bootApp({ ...viaProxy, HTTPS_PROXY: proxyUrl.replace('relay:s3cr%20et@', '') });
      const refused = await sync();
      expect(refused.status).toBe('failed');
      expect(refused.message).toContain('407 Proxy Authentication Required');
      await t.close();

      // NO_PROXY names the endpoint's domain: the service connects itself, and the name resolves nowhere.
      tunnels.length = 0;
      t = await bootApp({ ...viaProxy, HTTPS_PROXY: proxyUrl, NO_PROXY: 'localhost,.proxied.test' });
      const direct = await sync();
      expect(direct.status).toBe('failed');
      expect(direct.message).toMatch(/ENOTFOUND|EAI_AGAIN|getaddrinfo/);
      expect(tunnels).toEqual([]);
    } finally {
      await forward.close();
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  it('mirrors through an access point ARN: the SDK addresses and signs for the access point, and events for the bucket behind it apply', async () => {
    const dir = tempDir('access-point');
    // reports-123456789012.s3.proxied.test resolves nowhere: only the proxy, which opens every tunnel to the front, reaches it.
    const mrapHost = 'mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com';
    const { key, cert, certPath } = loopbackCertificate(dir, 's3.proxied.test', ['s3.proxied.test', '*.s3.proxied.test', mrapHost]);
    const seen: Array<{ host: string; method: string; url: string; scope: string; algorithm: string; regionSet?: string }> = [];
    const front = https.createServer({ key, cert }, (req, res) => {
      const host = req.headers.host ?? '';
      const scope = /Credential=[^/]+\/\d{8}\/([^,]+)\/aws4_request/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const algorithm = (req.headers.authorization ?? '').split(' ')[0];
      const regionSet = req.headers['x-amz-region-set'] as string | undefined;
      seen.push({ host, method: req.method ?? '', url: req.url ?? '', scope, algorithm, regionSet });
      // The access points' hosts serve the bucket, as S3 does: handed to the emulator path style.
      if (host !== 'reports-123456789012.s3.proxied.test' && host !== mrapHost) return void res.writeHead(404).end();
      forwardToEmulator(req, res, bucket);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const forward = await startConnectProxy({ to: () => (front.address() as AddressInfo).port });
    const arn = 'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports';
    try {
      await seed(['ap/a.txt', 'ap/b c.txt']);
      t = await bootApp({
        S3_BUCKET_NAME: arn,
        EVENT_BUCKET_NAME: bucket,
        S3_ENDPOINT: 'https://s3.proxied.test',
        S3_FORCE_PATH_STYLE: 'false',
        AWS_REGION: 'us-east-1',
        AWS_CA_BUNDLE: certPath,
        HTTPS_PROXY: forward.url,
        WEBHOOK_AUTH: 'none',
      });
      expect((await t.http().get('/api/v1/config').expect(200)).body.s3).toMatchObject({
        bucket: arn,
        eventBucket: bucket,
        dataPath: { kind: 'sdk', reason: 'an access point ARN: the SDK derives its endpoint and signing from it' },
      });
      const report = await sync();
      expect(report.counts).toMatchObject({ downloaded: 2, failed: 0 });
      await expectMirrorMatches(['ap/a.txt', 'ap/b c.txt']);
      expect((await t.http().get('/api/v1/health').expect(200)).body).toMatchObject({ status: 'healthy', s3_connection: true });
      // Every request went to the access point's host, signed for the ARN's region, not AWS_REGION's.
      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(
        seen.every(
          (r) => r.host === 'reports-123456789012.s3.proxied.test' && r.scope === 'eu-west-1/s3' && r.algorithm === 'AWS4-HMAC-SHA256',
        ),
      ).toBe(true);
      expect(new Set(forward.connects.map((c) => c.url))).toEqual(new Set(['reports-123456789012.s3.proxied.test:443']));

      // The notification names the bucket behind the access point; its object is fetched through the access point.
      const body = contentFor('ap/c.txt');
      await put(s3, bucket, 'ap/c.txt', body);
      const etag = createHash('md5').update(body).digest('hex');
      const accepted = await t
        .http()
        .post('/api/v1/s3-notification')
        .send(notification({ bucket, key: 'ap/c.txt', op: 'put', size: body.length, etag }))
        .expect(202);
      expect(accepted.body).toMatchObject({ accepted: 1, ignored: 0 });
      await eventually(() => existsSync(join(t.mirrorDir, 'ap/c.txt')), Boolean, 10_000, 'the file of the event');
      expect(await readFile(join(t.mirrorDir, 'ap/c.txt'))).toEqual(body);
      expect(seen.some((r) => r.method === 'GET' && r.url.startsWith('/ap/c.txt'))).toBe(true);
      // One for the access point's name instead is not this mirror's.
      const other = await t
        .http()
        .post('/api/v1/s3-notification')
        .send(notification({ bucket: 'reports', key: 'ap/d.txt', op: 'put', size: 1 }))
        .expect(202);
      expect(other.body).toMatchObject({ accepted: 0, ignored: 1 });
      expect(other.body.records[0].reason).toBe(`event for bucket "reports"; this service applies events for "${bucket}"`);
      await t.close();

      // A Multi-Region Access Point: its global host, whatever the endpoint, and SigV4A over every region.
      seen.length = 0;
      t = await bootApp({
        S3_BUCKET_NAME: 'arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap',
        AWS_CA_BUNDLE: certPath,
        HTTPS_PROXY: forward.url,
        LOCAL_DOWNLOAD_DIR: tempDir('mrap-mirror'),
      });
      const global = await sync();
      expect(global.counts).toMatchObject({ downloaded: 3, failed: 0 });
      expect(await readFile(join(t.mirrorDir, 'ap/b c.txt'))).toEqual(contentFor('ap/b c.txt'));
      expect(seen.length).toBeGreaterThanOrEqual(4);
      expect(seen.every((r) => r.host === mrapHost && r.algorithm === 'AWS4-ECDSA-P256-SHA256' && r.regionSet === '*')).toBe(true);
    } finally {
      // The service's kept-alive connections run through tunnels the proxy's close does not end.
      await t?.close();
      await forward.close();
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  it('keeps its manifest across restarts (a resync after restart downloads nothing)', async () => {
    await seed(['p/1.txt', 'p/2.txt']);
    await boot();
    await sync();
    const { mirrorDir, stateDir } = t;
    await t.close();
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: endpoint, LOCAL_DOWNLOAD_DIR: mirrorDir, STATE_DIR: stateDir });
    proxy.requests.length = 0;
    const report = await sync();
    expect(report.counts).toMatchObject({ skipped: 2, downloaded: 0 });
    expect(proxy.objectGets()).toBe(0);
  });

  it('keeps only RUN_HISTORY_LIMIT finished runs, and clears listings a crash left staged', async () => {
    await seed(['h.txt']);
    await boot({ RUN_HISTORY_LIMIT: '2' });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await sync()).run_id);
    const runs = (await t.http().get('/api/v1/sync/runs').expect(200)).body as Array<{ id: string }>;
    expect(runs.map((r) => r.id)).toEqual([ids[3], ids[2]]);
    await t.http().get(`/api/v1/sync/runs/${ids[0]}`).expect(404);

    const { mirrorDir, stateDir } = t;
    await t.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(stateDir, 'state.db'));
    db.prepare('INSERT INTO listing (run_id, key) VALUES (?, ?)').run('crashed-run', 'h.txt');
    db.close();
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: endpoint, LOCAL_DOWNLOAD_DIR: mirrorDir, STATE_DIR: stateDir });
    const check = new Database(join(stateDir, 'state.db'), { readonly: true });
    expect(check.prepare('SELECT COUNT(*) AS n FROM listing').get()).toEqual({ n: 0 });
    check.close();
  });

  it('leaves no partial file behind and removes those left by a crash', async () => {
    await seed(['a.txt']);
    await boot();
    await sync();
    const { mirrorDir, stateDir } = t;
    await t.close();
    const leftover = join(mirrorDir, 'dir', '.abc123.s3sync-partial');
    await mkdir(dirname(leftover), { recursive: true });
    await writeFile(leftover, 'half a file');
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: endpoint, LOCAL_DOWNLOAD_DIR: mirrorDir, STATE_DIR: stateDir });
    await eventually(
      () => existsSync(leftover),
      (present) => !present,
      15_000,
      'the partial file to be swept',
    );
  });
});
