import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Repository } from '../aws/s3.repository';
import { admitKey } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import type { RemoteObject } from '../mirror/file-version';
import type { MirrorService } from '../mirror/mirror.service';
import { ManifestStore } from '../state/manifest.store';
import { SqliteDatabase } from '../state/sqlite/sqlite.database';
import { SqliteStateStore } from '../state/sqlite/sqlite.state-store';
import { Metrics } from '../metrics/metrics.service';
import { SyncService } from './sync.service';
import { WorkQueue } from './work.queue';
import { FixedClock } from '../../test/support/clocks';

/** Service-level spec: full syncs on the real work queue, manifest and run store, with fakes of S3 and the mirror's disk. */

const object = (key: string, etag = 'e1', size = 10): RemoteObject => ({ key, etag, size, lastModified: new Date('2026-11-20T00:00:00Z') });

describe('SyncService (fakes of S3 and the mirror)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let manifest: ManifestStore;
  let listing: RemoteObject[][];
  /** The listing waits for this before its first page. */
  let listingGate: Promise<void>;
  let downloaded: string[];
  let removed: string[];
  let onDisk: Set<string>;

  const service = (env: Record<string, string> = {}): SyncService => {
    const config = new AppConfig(
      validateEnv({ S3_BUCKET_NAME: 'test-bucket', STATE_DIR: dir, LOCAL_DOWNLOAD_DIR: join(dir, 'mirror'), ...env }),
    );
    db = new SqliteDatabase(config);
    manifest = new ManifestStore(db);
    const s3 = {
      async *list() {
        await listingGate;
        for (const page of listing) yield page;
      },
    } as unknown as S3Repository;
    // The mirror stamps commits with the service's clock, as the real one does.
    const clock = new FixedClock();
    const mirror = {
      admit: (key: string) => admitKey(join(dir, 'mirror'), key, config.s3),
      localFile: (mapping: { key: string }) => (onDisk.has(mapping.key) ? { size: 10, mtimeMs: 0 } : undefined),
      adopt: () => undefined,
      download: async (o: RemoteObject) => {
        downloaded.push(o.key);
        onDisk.add(o.key);
        manifest.put({
          key: o.key,
          etag: o.etag,
          size: o.size,
          lastModified: o.lastModified,
          verifiedBy: 'md5',
          localPath: o.key,
          syncedAt: clock.now(),
        });
        return { fileId: `test-bucket/${o.key}@${o.etag}`, key: o.key, etag: o.etag, bytes: o.size, verifiedBy: 'md5' };
      },
      remove: async (key: string) => {
        removed.push(key);
        onDisk.delete(key);
        manifest.remove(key);
      },
    } as unknown as MirrorService;
    return new SyncService(config, s3, mirror, new WorkQueue(config), manifest, new SqliteStateStore(db), clock, new Metrics());
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sync-service-'));
    listing = [];
    listingGate = Promise.resolve();
    downloaded = [];
    removed = [];
    onDisk = new Set();
  });
  afterEach(() => {
    db?.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (sync: SyncService, request: { dryRun?: boolean; allowDeleteAll?: boolean } = {}) =>
    (await sync.start({ trigger: 'api', ...request })).done;

  it('downloads what is new, skips what the manifest and the disk already hold, and reports refused keys', async () => {
    const sync = service();
    listing = [
      [object('a.txt'), object('b/c.txt')],
      [object('bad//key'), object('folder/')],
    ];
    const first = await run(sync);
    expect(downloaded.sort()).toEqual(['a.txt', 'b/c.txt']);
    expect(first).toMatchObject({ status: 'completed_with_errors', counts: { listed: 4, downloaded: 2, refused: 1, skipped: 0 } });

    downloaded = [];
    listing = [[object('a.txt'), object('b/c.txt', 'e2')]];
    const second = await run(sync);
    expect(downloaded).toEqual(['b/c.txt']);
    expect(second).toMatchObject({ status: 'completed', counts: { listed: 2, downloaded: 1, skipped: 1, deleted: 0 } });
  });

  it('deletes what is gone from the bucket once the listing is complete, within MAX_DELETE', async () => {
    const sync = service({ MAX_DELETE: '1' });
    listing = [[object('a'), object('b'), object('c')]];
    await run(sync);
    listing = [[object('a'), object('b')]];
    expect(await run(sync)).toMatchObject({ status: 'completed', counts: { deleted: 1 } });
    expect(removed).toEqual(['c']);
    listing = [[]];
    const blocked = await run(sync);
    expect(blocked).toMatchObject({ status: 'failed', message: expect.stringContaining('MAX_DELETE') });
    expect(removed).toEqual(['c']);
  });

  it('plans without touching the mirror in a dry run', async () => {
    const sync = service();
    listing = [[object('a'), object('b')]];
    expect(await run(sync, { dryRun: true })).toMatchObject({
      status: 'completed',
      dryRun: true,
      counts: { toDownload: 2, downloaded: 0 },
    });
    expect(downloaded).toEqual([]);
  });

  it('refuses a second run over an overlapping prefix while one runs', async () => {
    const sync = service();
    let release!: () => void;
    listingGate = new Promise<void>((resolve) => (release = resolve));
    listing = [[object('a')]];
    const first = await sync.start({ trigger: 'api' });
    await expect(sync.start({ trigger: 'api', prefix: '' })).rejects.toMatchObject({ code: 'CONFLICT' });
    release();
    await expect(first.done).resolves.toMatchObject({ status: 'completed' });
  });
});
