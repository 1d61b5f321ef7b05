import { notification } from '../../test/support/s3-events';
import { mapKey } from '../common/object-key';
import type { AppConfig } from '../config/app-config';
import type { RemoteObject } from '../mirror/file-version';
import type { MirrorService } from '../mirror/mirror.service';
import type { ManifestStore } from '../state/manifest.store';
import type { S3Repository } from '../aws/s3.repository';
import type { EventInbox } from '../state/state.ports';
import { Metrics } from '../metrics/metrics.service';
import { S3EventsService } from './s3-events.service';
import { WorkQueue } from './work.queue';
import { FixedClock } from '../../test/support/clocks';

/** Service-level spec: S3EventsService on the real WorkQueue, with fakes of the mirror, the manifest and the store. */

const ROOT = '/mirror';
const BUCKET = 'bucket';

function setup(options: { maxFileBytes?: number; deleteRemoved?: boolean; maxDelete?: number } = {}) {
  const config = {
    s3: { bucket: BUCKET, prefix: '' },
    sync: {
      concurrency: 2,
      maxFileBytes: options.maxFileBytes ?? 0,
      deleteRemoved: options.deleteRemoved ?? true,
      maxDelete: options.maxDelete ?? -1,
    },
    events: { deleteWindowMs: 3_600_000 },
  } as unknown as AppConfig;
  /** Keys S3 still holds: a HEAD of any other answers "no such key". */
  const inBucket = new Set<string>();
  const s3 = {
    headObject: async (key: string) => (inBucket.has(key) ? { etag: 'e-current', size: 1 } : undefined),
  } as unknown as S3Repository;
  const committed = new Map<string, { etag: string; size: number }>();
  const sequencers = new Map<string, string>();
  const local = new Map<string, number>();
  const downloads: RemoteObject[] = [];
  const removed: string[] = [];
  const mirror = {
    admit: (key: string, { eventBucket = BUCKET }: { eventBucket?: string } = {}) => {
      if (eventBucket !== BUCKET) return { kind: 'ignored', reason: 'other bucket' };
      const mapping = mapKey(ROOT, key);
      if (mapping.kind === 'file') return { kind: 'file', mapping };
      return mapping.kind === 'refused' ? { kind: 'refused', reason: mapping.reason } : { kind: 'ignored', reason: 'folder marker' };
    },
    localFile: (mapping: { key: string }) => (local.has(mapping.key) ? { size: local.get(mapping.key)!, mtimeMs: 0 } : undefined),
    download: async (object: RemoteObject) => {
      downloads.push(object);
      committed.set(object.key, { etag: object.etag, size: object.size });
      local.set(object.key, object.size);
    },
    remove: async (key: string) => {
      removed.push(key);
      committed.delete(key);
      local.delete(key);
    },
  } as unknown as MirrorService;
  const manifest = {
    committed: (key: string) => committed.get(key),
    lastSequencer: (key: string) => sequencers.get(key),
    recordSequencer: (key: string, sequencer: string) => void sequencers.set(key, sequencer),
    count: () => committed.size,
  } as unknown as ManifestStore;
  const store = { inboxCounts: async () => ({ pending: 0, failed: 0, dead: 0 }) } as unknown as EventInbox;
  const service = new S3EventsService(config, new WorkQueue(config), mirror, manifest, store, new FixedClock(), new Metrics(), s3);
  const apply = (...events: Parameters<typeof notification>) => service.applyNow(JSON.stringify(notification(...events)));
  const mirrored = (...keys: string[]) => {
    for (const key of keys) {
      committed.set(key, { etag: 'e1', size: 1 });
      local.set(key, 1);
    }
  };
  return { service, apply, committed, local, downloads, removed, sequencers, inBucket, mirrored };
}

describe('S3EventsService (fakes of the mirror and the manifest)', () => {
  it('downloads a new version and records its sequencer', async () => {
    const t = setup();
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'put', etag: 'e1', size: 3, sequencer: '0A' });
    expect(t.downloads.map((d) => [d.key, d.etag, d.size])).toEqual([['a.txt', 'e1', 3]]);
    expect(t.sequencers.get('a.txt')).toBe('0A');
    expect((await t.service.stats()).applied.downloaded).toBe(1);
  });

  it('decides an event with the full sync planner: the same version already on disk is not fetched again', async () => {
    const t = setup();
    t.committed.set('a.txt', { etag: 'e1', size: 3 });
    t.local.set('a.txt', 3);
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'put', etag: 'e1', size: 3 });
    expect(t.downloads).toEqual([]);
    expect((await t.service.stats()).applied.unchanged).toBe(1);
  });

  it('fetches the same version again when its local file is missing', async () => {
    const t = setup();
    t.committed.set('a.txt', { etag: 'e1', size: 3 });
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'put', etag: 'e1', size: 3 });
    expect(t.downloads).toHaveLength(1);
  });

  it('checks the size limit before anything else, as the planner does', async () => {
    const t = setup({ maxFileBytes: 10 });
    t.committed.set('big.bin', { etag: 'e1', size: 11 });
    t.local.set('big.bin', 11);
    await t.apply({ bucket: BUCKET, key: 'big.bin', op: 'put', etag: 'e1', size: 11 });
    expect(t.downloads).toEqual([]);
    expect((await t.service.stats()).applied).toMatchObject({ skipped: 1, unchanged: 0 });
  });

  it('drops a change whose sequencer is not newer than the last one applied to its key', async () => {
    const t = setup();
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'put', etag: 'e2', size: 3, sequencer: '0B' });
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'delete', sequencer: '0A' });
    expect(t.removed).toEqual([]);
    expect((await t.service.stats()).applied.stale).toBe(1);
  });

  it('deletes on ObjectRemoved, unless deletes are not propagated', async () => {
    const on = setup();
    on.mirrored('a.txt');
    await on.apply({ bucket: BUCKET, key: 'a.txt', op: 'delete' });
    expect(on.removed).toEqual(['a.txt']);
    const off = setup({ deleteRemoved: false });
    off.mirrored('a.txt');
    await off.apply({ bucket: BUCKET, key: 'a.txt', op: 'delete' });
    expect(off.removed).toEqual([]);
  });

  it('keeps the file when S3 still has the object, without taking the delete sequencer', async () => {
    const t = setup();
    t.mirrored('a.txt');
    t.inBucket.add('a.txt');
    await t.apply({ bucket: BUCKET, key: 'a.txt', op: 'delete', sequencer: 'FF' });
    expect(t.removed).toEqual([]);
    expect(t.sequencers.has('a.txt')).toBe(false);
    expect((await t.service.stats()).applied).toMatchObject({ kept: 1, deleted: 0 });
  });

  it('has nothing to delete for a key it never mirrored', async () => {
    const t = setup();
    await t.apply({ bucket: BUCKET, key: 'never.txt', op: 'delete' });
    expect(t.removed).toEqual([]);
    expect((await t.service.stats()).applied.unchanged).toBe(1);
  });

  it('holds deletes beyond MAX_DELETE within the window, and the one that would empty the mirror', async () => {
    const t = setup({ maxDelete: 2 });
    t.mirrored('a', 'b', 'c', 'd');
    await t.apply({ bucket: BUCKET, key: 'a', op: 'delete' });
    await t.apply({ bucket: BUCKET, key: 'b', op: 'delete' });
    await expect(t.apply({ bucket: BUCKET, key: 'c', op: 'delete' })).rejects.toThrow(/held: more than MAX_DELETE \(2\)/);
    expect(t.removed).toEqual(['a', 'b']);

    const unbounded = setup();
    unbounded.mirrored('a', 'b');
    await unbounded.apply({ bucket: BUCKET, key: 'a', op: 'delete' });
    await expect(unbounded.apply({ bucket: BUCKET, key: 'b', op: 'delete' })).rejects.toThrow(/held: would delete the last mirrored file/);
    expect(unbounded.removed).toEqual(['a']);
  });

  it('reports each record: another bucket ignored, an unsafe key rejected, the rest accepted', async () => {
    const t = setup();
    const report = await t.apply(
      { bucket: 'other', key: 'x.txt', op: 'put', size: 1 },
      { bucket: BUCKET, key: '../escape', op: 'put', size: 1 },
      { bucket: BUCKET, key: 'ok.txt', op: 'put', size: 1 },
    );
    expect(report.records.map((r) => r.status)).toEqual(['ignored', 'rejected', 'accepted']);
    expect(t.downloads.map((d) => d.key)).toEqual(['ok.txt']);
  });

  it('answers a body that is not JSON with a 400-class error, naming the problem', async () => {
    const t = setup();
    await expect(t.service.applyNow('not json')).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining('not valid JSON'),
    });
  });
});
