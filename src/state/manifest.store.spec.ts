import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteAt } from './state.ports.testing';
import { ManifestEntry, ManifestStore } from './manifest.store';
import { SqliteDatabase } from './sqlite/sqlite.database';

const entry = (key: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
  key,
  etag: 'e',
  size: 1,
  lastModified: new Date('2026-01-01T00:00:00Z'),
  verifiedBy: 'md5',
  localPath: key,
  syncedAt: new Date('2026-01-02T00:00:00Z'),
  ...over,
});

describe('ManifestStore', () => {
  let dir: string;
  let db: SqliteDatabase;
  let manifest: ManifestStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'manifest-'));
    db = sqliteAt(dir);
    manifest = new ManifestStore(db);
  });
  afterEach(() => {
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads its own writes before and after they are flushed, and persists them', () => {
    const e = entry('a/b', { versionId: 'v1', sequencer: '0A', checksum: 'abc' });
    manifest.put(e);
    expect(manifest.get('a/b')).toEqual(e);
    manifest.flush();
    expect(manifest.get('a/b')).toEqual(e);
    const reopened = new ManifestStore(db);
    expect(reopened.get('a/b')).toEqual(e);
    manifest.remove('a/b');
    expect(manifest.get('a/b')).toBeUndefined();
  });

  it('drops a pending write when the key is removed before the flush', () => {
    manifest.put(entry('gone'));
    manifest.remove('gone');
    manifest.flush();
    expect(manifest.get('gone')).toBeUndefined();
  });

  it('matches prefixes by bytes: case-sensitive, with LIKE wildcards taken literally, and non-ASCII', () => {
    const keys = ['A/1', 'a/1', 'a/2', 'a_/1', 'a%/1', 'ab/1', 'é/1', 'é/2', 'f/1', '\u{10ffff}/x', '\u{10ffff}\u{10ffff}'];
    for (const k of keys) manifest.put(entry(k));
    const under = (p: string): string[] => manifest.page(p, '', 100).map((e) => e.key);
    expect(under('a/')).toEqual(['a/1', 'a/2']);
    expect(under('a_')).toEqual(['a_/1']);
    expect(under('a%')).toEqual(['a%/1']);
    expect(under('A')).toEqual(['A/1']);
    expect(under('é/')).toEqual(['é/1', 'é/2']);
    expect(under('\u{10ffff}')).toEqual(['\u{10ffff}/x', '\u{10ffff}\u{10ffff}']);
    expect(under('')).toHaveLength(keys.length);
    expect(manifest.count('a')).toBe(5);
  });

  it('pages in key order after a cursor', () => {
    for (const k of ['k3', 'k1', 'k2', 'k4']) manifest.put(entry(k));
    expect(manifest.page('k', '', 2).map((e) => e.key)).toEqual(['k1', 'k2']);
    expect(manifest.page('k', 'k2', 2).map((e) => e.key)).toEqual(['k3', 'k4']);
  });

  it('finds what a listing did not contain, under the prefix only, across many pages', () => {
    const all = Array.from({ length: 1203 }, (_, i) => `p/${String(i).padStart(5, '0')}`);
    for (const k of all) manifest.put(entry(k));
    manifest.put(entry('q/outside'));
    const listed = all.filter((_, i) => i % 3 !== 0);
    manifest.stageListing('run-1', listed.reverse());
    const missing = [...manifest.missingFromListing('run-1', 'p/', Date.now() + 1)].map((e) => e.key);
    expect(missing).toEqual(all.filter((_, i) => i % 3 === 0));
    expect(manifest.countMissingFromListing('run-1', 'p/', Date.now() + 1)).toBe(missing.length);
    manifest.clearListing('run-1');
    expect([...manifest.missingFromListing('run-1', 'p/', Date.now() + 1)]).toHaveLength(all.length);
  });

  it('never counts as gone a file committed after the run began (an event may bring one behind the listing)', () => {
    const runStart = Date.parse('2026-12-01T10:00:00Z');
    manifest.put(entry('p/old', { syncedAt: new Date(runStart - 1) }));
    manifest.put(entry('p/by-event', { syncedAt: new Date(runStart + 5) }));
    manifest.stageListing('run-2', ['p/other']);
    expect([...manifest.missingFromListing('run-2', 'p/', runStart)].map((e) => e.key)).toEqual(['p/old']);
    expect(manifest.countMissingFromListing('run-2', 'p/', runStart)).toBe(1);
  });

  it('reads a key range with one index bound each way, whichever bounds the caller gives', () => {
    const prepare = jest.spyOn(db.db, 'prepare');
    for (const k of ['a/1', 'p/1', 'p/2', 'p/3', 'q/1']) manifest.put(entry(k));
    expect(manifest.committedRange('p/', '', 'p/2', 10).map((r) => r.key)).toEqual(['p/1', 'p/2']);
    expect(manifest.committedRange('p/', 'p/1', 'p/3', 10).map((r) => r.key)).toEqual(['p/2', 'p/3']);
    expect(manifest.committedRange('p/', 'p/2', null, 10).map((r) => r.key)).toEqual(['p/3']);
    expect(manifest.committedRange('', 'p/2', null, 10).map((r) => r.key)).toEqual(['p/3', 'q/1']);
    expect(manifest.committedRange('', '', 'a/1', 10).map((r) => r.key)).toEqual(['a/1']);
    const ranges = prepare.mock.calls.map(([sql]) => sql).filter((sql) => sql.includes('ORDER BY key LIMIT @limit'));
    expect(ranges.length).toBeGreaterThanOrEqual(4);
    for (const sql of ranges) {
      // A second bound on one side is only a filter: the search would run on to the end of the prefix.
      expect(sql.match(/key >=? @/g)?.length ?? 0).toBeLessThanOrEqual(1);
      expect(sql.match(/key <=? @/g)?.length ?? 0).toBeLessThanOrEqual(1);
    }
    prepare.mockRestore();
  });

  it('reports totals', () => {
    manifest.put(entry('x', { size: 10 }));
    manifest.put(entry('y', { size: 32 }));
    expect(manifest.totals()).toEqual({ files: 2, bytes: 42 });
  });

  it('keeps the last applied sequencer per key, beyond the removal of the file', () => {
    expect(manifest.lastSequencer('k')).toBeUndefined();
    manifest.put(entry('k'));
    manifest.recordSequencer('k', '00A1', new Date());
    manifest.recordSequencer('k', '00A2', new Date());
    manifest.remove('k');
    expect(manifest.lastSequencer('k')).toBe('00A2');
    expect(manifest.lastSequencer('other')).toBeUndefined();
  });
});
