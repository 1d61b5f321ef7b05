import type { RemoteObject } from '../mirror/file-version';
import { deleteGuard, MTIME_TOLERANCE_MS, planObject } from './sync-planner';

const lastModified = new Date('2026-11-20T10:00:00Z');
const remote: RemoteObject = { key: 'a/b.jsonl', size: 100, etag: 'abc', lastModified };
const opts = { maxFileBytes: 0, skipExisting: true };

describe('planObject', () => {
  it('downloads a new object', () => {
    expect(planObject(remote, undefined, undefined, opts)).toEqual({ action: 'download', reason: 'new' });
  });

  it('skips an object whose committed etag and size match and whose file is there', () => {
    expect(planObject(remote, { etag: 'abc', size: 100 }, { size: 100, mtimeMs: 0 }, opts)).toEqual({
      action: 'skip',
      reason: 'unchanged',
    });
  });

  it.each([
    [{ etag: 'old', size: 100 }, 'changed'],
    [{ etag: 'abc', size: 99 }, 'changed'],
  ])('downloads again when the committed version differs (%j)', (committed, reason) => {
    expect(planObject(remote, committed, { size: 100, mtimeMs: 0 }, opts)).toEqual({ action: 'download', reason });
  });

  it('downloads again when the committed file was removed locally', () => {
    expect(planObject(remote, { etag: 'abc', size: 100 }, undefined, opts)).toEqual({ action: 'download', reason: 'missing-locally' });
  });

  it('downloads again when the local file was altered (size differs)', () => {
    expect(planObject(remote, { etag: 'abc', size: 100 }, { size: 7, mtimeMs: 0 }, opts)).toEqual({
      action: 'download',
      reason: 'local-differs',
    });
  });

  it('adopts a local file of equal size and mtime when the manifest has no row', () => {
    const local = { size: 100, mtimeMs: lastModified.getTime() + MTIME_TOLERANCE_MS - 1 };
    expect(planObject(remote, undefined, local, opts).action).toBe('adopt');
  });

  it.each([
    [{ size: 101, mtimeMs: lastModified.getTime() }],
    [{ size: 100, mtimeMs: lastModified.getTime() + MTIME_TOLERANCE_MS }],
    [{ size: 100, mtimeMs: lastModified.getTime() - MTIME_TOLERANCE_MS }],
  ])('does not adopt a local file that differs (%j)', (local) => {
    expect(planObject(remote, undefined, local, opts)).toEqual({ action: 'download', reason: 'new' });
  });

  it('does not adopt when SKIP_EXISTING_FILES is off', () => {
    const local = { size: 100, mtimeMs: lastModified.getTime() };
    expect(planObject(remote, undefined, local, { ...opts, skipExisting: false })).toEqual({ action: 'download', reason: 'new' });
  });

  it('skips objects above the size limit, before anything else', () => {
    const d = planObject({ ...remote, size: 1001 }, undefined, undefined, { ...opts, maxFileBytes: 1000 });
    expect(d).toEqual({ action: 'too-large', reason: '1001 bytes exceeds MAX_FILE_SIZE_MB (1000 bytes)' });
    expect(planObject({ ...remote, size: 1000 }, undefined, undefined, { ...opts, maxFileBytes: 1000 }).action).toBe('download');
  });

  it.each(['GLACIER', 'DEEP_ARCHIVE'])('reports a %s object that is not restored as archived instead of fetching it', (storageClass) => {
    expect(planObject({ ...remote, storageClass }, undefined, undefined, opts)).toEqual({
      action: 'archived',
      reason: `archived in ${storageClass}: restore it (RestoreObject) to mirror it`,
    });
    expect(planObject({ ...remote, storageClass, restore: 'restoring' }, undefined, undefined, opts)).toEqual({
      action: 'archived',
      reason: `archived in ${storageClass}, restore in progress: fetched once it completes`,
    });
    expect(planObject({ ...remote, storageClass, restore: 'restored' }, undefined, undefined, opts).action).toBe('download');
  });

  it('keeps a mirrored file whose object moved to an archive class, and fetches classes readable at once', () => {
    const archived = { ...remote, storageClass: 'GLACIER' };
    expect(planObject(archived, { etag: 'abc', size: 100 }, { size: 100, mtimeMs: 0 }, opts).action).toBe('skip');
    for (const storageClass of ['GLACIER_IR', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'EXPRESS_ONEZONE']) {
      expect(planObject({ ...remote, storageClass }, undefined, undefined, opts).action).toBe('download');
    }
  });
});

describe('deleteGuard', () => {
  const base = { toDelete: 3, mirrored: 10, maxDelete: 5, allowDeleteAll: false };

  it('allows deletions within MAX_DELETE', () => {
    expect(deleteGuard(base)).toBeUndefined();
    expect(deleteGuard({ ...base, toDelete: 5 })).toBeUndefined();
  });

  it('allows a run with nothing to delete, even on an empty mirror', () => {
    expect(deleteGuard({ ...base, toDelete: 0, mirrored: 0 })).toBeUndefined();
  });

  it('blocks more than MAX_DELETE deletions', () => {
    expect(deleteGuard({ ...base, toDelete: 6 })).toBe('would delete 6 files, more than MAX_DELETE (5); nothing was deleted');
  });

  it('treats MAX_DELETE=-1 as no limit but still refuses to empty the mirror', () => {
    expect(deleteGuard({ ...base, toDelete: 9, maxDelete: -1 })).toBeUndefined();
    expect(deleteGuard({ ...base, toDelete: 10, maxDelete: -1 })).toMatch(/^would delete every mirrored file \(10\)/);
  });

  it('blocks deleting every mirrored file unless explicitly allowed', () => {
    expect(deleteGuard({ ...base, toDelete: 2, mirrored: 2 })).toMatch(/every mirrored file/);
    expect(deleteGuard({ ...base, toDelete: 2, mirrored: 2, allowDeleteAll: true })).toBeUndefined();
  });
});
