import { ConflictError, IntegrityError, NotFoundError } from '../common/errors';
import { mapKey } from '../common/object-key';
import type { AppConfig } from '../config/app-config';
import type { ManifestEntry, ManifestStore } from '../state/manifest.store';
import type { RemoteObject } from './file-version';
import type { LocalDirs } from './local-dirs.service';
import { MirrorEvents } from './mirror.events';
import { MirrorService } from './mirror.service';
import type { ObjectFetcher } from './object.fetcher';
import { FixedClock } from '../../test/support/clocks';

/** Service-level spec: the mirror's facade with fakes of its fetcher, its folders and the manifest; the events port is real. */

const remote: RemoteObject = { key: 'a/b.txt', etag: 'e1', size: 3, lastModified: new Date('2026-11-20T00:00:00Z') };
const entryFor = (o: RemoteObject, etag = o.etag): ManifestEntry => ({
  key: o.key,
  etag,
  size: o.size,
  lastModified: o.lastModified,
  verifiedBy: 'md5',
  localPath: o.key,
  syncedAt: new Date(),
});

function setup(fetch: (attempt: number) => Promise<ManifestEntry>, clash?: ConflictError) {
  const config = { s3: { bucket: 'bucket', prefix: '' }, sync: { retryAttempts: 2, downloadTimeoutMs: 5000 } } as unknown as AppConfig;
  const rows = new Map<string, ManifestEntry>();
  const manifest = {
    put: (e: ManifestEntry) => void rows.set(e.key, e),
    get: (key: string) => rows.get(key),
    committed: (key: string) => rows.get(key),
  } as unknown as ManifestStore;
  const dirs = {
    root: '/mirror',
    requireFile: (key: string) => mapKey('/mirror', key),
    realPathInside: async (m: { absPath: string }) => m.absPath,
    clash: () => clash,
  } as unknown as LocalDirs;
  let attempts = 0;
  const fetcher = { fetch: () => fetch(++attempts) } as unknown as ObjectFetcher;
  const events = new MirrorEvents();
  const seen: string[] = [];
  events.observeDownloads({
    starting: async (o) => void seen.push(`starting ${o.key}@${o.etag}`),
    notCommitted: async (o, reason) => void seen.push(`not committed ${o.key}@${o.etag}: ${reason}`),
  });
  events.onCommitted((c) => seen.push(`committed ${c.fileId}`));
  const mirror = new MirrorService(config, dirs, fetcher, manifest, events, new FixedClock());
  return { mirror, seen, rows, attempts: () => attempts };
}

describe('MirrorService (fakes of the fetcher, the folders and the manifest)', () => {
  it('refuses a file/folder clash the disk shows before fetching anything', async () => {
    const t = setup(async () => entryFor(remote), new ConflictError('file/folder clash: "a/b.txt" is a folder locally'));
    await expect(t.mirror.download(remote)).rejects.toThrow(/is a folder locally/);
    expect(t.attempts()).toBe(0);
    expect(t.seen).toEqual([]);
  });

  it('tells of the download, records the version, then publishes its commit with its fileId', async () => {
    const t = setup(async () => entryFor(remote));
    await expect(t.mirror.download(remote)).resolves.toEqual({
      fileId: 'bucket/a/b.txt@e1',
      key: 'a/b.txt',
      etag: 'e1',
      bytes: 3,
      verifiedBy: 'md5',
    });
    expect(t.seen).toEqual(['starting a/b.txt@e1', 'committed bucket/a/b.txt@e1']);
    expect(t.rows.get('a/b.txt')?.etag).toBe('e1');
  });

  it('fetches a corrupt body again, and commits the sound copy', async () => {
    const t = setup(async (n) => {
      if (n === 1) throw new IntegrityError('md5 mismatch');
      return entryFor(remote);
    });
    await t.mirror.download(remote);
    expect(t.attempts()).toBe(2);
    expect(t.seen).toEqual(['starting a/b.txt@e1', 'committed bucket/a/b.txt@e1']);
  });

  it('gives up at once on what no retry can mend, and says the version was not committed', async () => {
    const t = setup(async () => {
      throw new ConflictError('file/folder clash');
    });
    await expect(t.mirror.download(remote)).rejects.toBeInstanceOf(ConflictError);
    expect(t.attempts()).toBe(1);
    expect(t.seen).toEqual(['starting a/b.txt@e1', 'not committed a/b.txt@e1: file/folder clash']);
    expect(t.rows.size).toBe(0);
  });

  it('stays quiet about a download the caller stopped: the version is still wanted', async () => {
    const stop = new AbortController();
    const t = setup(async () => {
      stop.abort(new Error('shutting down'));
      throw new Error('aborted');
    });
    await expect(t.mirror.download(remote, { signal: stop.signal })).rejects.toThrow();
    expect(t.seen).toEqual(['starting a/b.txt@e1']);
  });

  it('commits what S3 served when it is another version, and says the listed one was not committed', async () => {
    const t = setup(async () => entryFor(remote, 'e2'));
    await t.mirror.download(remote);
    expect(t.seen).toEqual([
      'starting a/b.txt@e1',
      'committed bucket/a/b.txt@e2',
      'not committed a/b.txt@e1: superseded: S3 served version e2',
    ]);
  });

  it('opens a committed file for reading, and refuses another version or an unknown key', async () => {
    const t = setup(async () => entryFor(remote));
    await t.mirror.download(remote);
    await expect(t.mirror.openForRead('a/b.txt', { fileId: 'bucket/a/b.txt@e1' })).resolves.toMatchObject({ absPath: '/mirror/a/b.txt' });
    await expect(t.mirror.openForRead('a/b.txt', { fileId: 'bucket/a/b.txt@old' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.mirror.openForRead('nope.txt')).rejects.toBeInstanceOf(NotFoundError);
  });
});
