import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteAt } from '../state/state.ports.testing';
import { ManifestEntry, ManifestStore } from '../state/manifest.store';
import { SqliteDatabase } from '../state/sqlite/sqlite.database';
import { compareUtf8 } from '../common/utf8-order';
import { ListingReconciler } from './listing-reconciler';

const RUN_START = Date.parse('2026-12-01T10:00:00Z');

const entry = (key: string, syncedAtMs = RUN_START - 1000): ManifestEntry => ({
  key,
  etag: `etag-of-${key}`,
  size: key.length,
  lastModified: new Date('2026-01-01T00:00:00Z'),
  verifiedBy: 'md5',
  localPath: key,
  syncedAt: new Date(syncedAtMs),
});

/** A seeded generator, so that a failing case can be run again. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function inPages<T>(items: readonly T[], size: number): T[][] {
  const pages: T[][] = [];
  for (let i = 0; i < items.length; i += size) pages.push(items.slice(i, i + size));
  return pages;
}

describe('ListingReconciler', () => {
  let dir: string;
  let db: SqliteDatabase;
  let manifest: ManifestStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'reconciler-'));
    db = sqliteAt(dir);
    manifest = new ManifestStore(db);
  });
  afterEach(() => {
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const reconciler = (ordered: boolean, prefix = 'p/', disorders: string[] = []): ListingReconciler =>
    new ListingReconciler(manifest, { id: 'run-1', prefix, sinceMs: RUN_START }, { ordered, onDisorder: (d) => disorders.push(d) });

  async function reconcile(r: ListingReconciler, pages: readonly string[][]): Promise<Map<string, { etag: string; size: number }>> {
    const committed = new Map<string, { etag: string; size: number }>();
    for (const page of pages) for (const [k, v] of await r.page(page)) committed.set(k, { etag: v.etag, size: v.size });
    await r.finish();
    return committed;
  }

  it('finds the rows before the first page, between pages and after the last, and gives the committed versions of listed keys', async () => {
    for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'p/e', 'p/f', 'p/g', 'q/outside', 'o/outside']) manifest.put(entry(k));
    const r = reconciler(true);
    const committed = await reconcile(r, [['p/b', 'p/c', 'p/new'], ['p/f']]);
    expect([...r.gone()].map((e) => e.key)).toEqual(['p/a', 'p/d', 'p/e', 'p/g']);
    expect(r.count()).toBe(4);
    expect(committed).toEqual(
      new Map([
        ['p/b', { etag: 'etag-of-p/b', size: 3 }],
        ['p/c', { etag: 'etag-of-p/c', size: 3 }],
        ['p/f', { etag: 'etag-of-p/f', size: 3 }],
      ]),
    );
  });

  it('matches a staged listing on random manifests, listings and page sizes, ordered or not', async () => {
    const next = random(17);
    for (let round = 0; round < 20; round++) {
      manifest.clearAllListings();
      db.db.prepare('DELETE FROM manifest').run();
      const keys = Array.from({ length: 1 + Math.floor(next() * 300) }, (_, i) => `p/${String(i * 7).padStart(5, '0')}`);
      const committedLate = new Set<string>();
      for (const k of keys) {
        const late = next() < 0.1;
        if (late) committedLate.add(k);
        if (next() < 0.8) manifest.put(entry(k, late ? RUN_START + 5 : RUN_START - 5));
      }
      const listed = keys.filter(() => next() < 0.6);
      const expected = keys.filter((k) => manifest.committed(k) && !listed.includes(k) && !committedLate.has(k));
      const pages = inPages(listed, 1 + Math.floor(next() * 40));

      const walked = reconciler(true);
      await reconcile(walked, pages);
      expect([...walked.gone()].map((e) => e.key)).toEqual(expected);
      expect(walked.count()).toBe(expected.length);
      manifest.clearListing('run-1');

      const staged = reconciler(false);
      await reconcile(
        staged,
        pages.map((p) => [...p].reverse()),
      );
      expect([...staged.gone()].map((e) => e.key)).toEqual(expected);
      manifest.clearListing('run-1');
    }
  });

  it('records a gap of many thousand rows between two listed keys, read in batches', async () => {
    const keys = Array.from({ length: 4500 }, (_, i) => `p/${String(i).padStart(5, '0')}`);
    for (const k of keys) manifest.put(entry(k));
    const r = reconciler(true);
    await reconcile(r, [[keys[0]], [keys[4499]]]);
    expect(r.count()).toBe(4498);
    expect([...r.gone()].map((e) => e.key)).toEqual(keys.slice(1, 4499));
  });

  it('never yields a row committed after the run began, including one an event brings back after the walk passed it', async () => {
    manifest.put(entry('p/old'));
    manifest.put(entry('p/recreated'));
    manifest.put(entry('p/by-event', RUN_START + 5));
    const r = reconciler(true);
    await reconcile(r, [['p/other']]);
    expect(r.count()).toBe(2);
    manifest.put(entry('p/recreated', RUN_START + 60_000));
    expect([...r.gone()].map((e) => e.key)).toEqual(['p/old']);
    expect(r.count()).toBe(1);
  });

  it('turns into a staged listing when a page comes out of key order, and still finds exactly the rows gone', async () => {
    for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'p/e', 'p/f']) manifest.put(entry(k));
    const disorders: string[] = [];
    const r = reconciler(true, 'p/', disorders);
    const committed = await reconcile(r, [
      ['p/b', 'p/d'],
      ['p/a', 'p/f'],
    ]);
    expect(disorders).toEqual(['"p/a" came after "p/d"']);
    expect([...r.gone()].map((e) => e.key)).toEqual(['p/c', 'p/e']);
    expect([...committed.keys()].sort()).toEqual(['p/a', 'p/b', 'p/d', 'p/f']);
  });

  it('follows S3 and SQLite order for keys beyond U+FFFF, where JavaScript order differs', async () => {
    // U+FFFD is EF BF BD in UTF-8 and sorts before U+1F600 (F0 9F 98 80); in UTF-16 it is the other way round.
    const inS3Order = ['p/a\u{e000}', 'p/a\u{fffd}', 'p/a\u{1f600}', 'p/a\u{1f600}b'];
    for (const k of inS3Order) manifest.put(entry(k));
    manifest.put(entry('p/a\u{10000}'));
    const disorders: string[] = [];
    const r = reconciler(true, 'p/', disorders);
    await reconcile(r, [inS3Order.slice(0, 2), inS3Order.slice(2)]);
    expect(disorders).toEqual([]);
    expect([...r.gone()].map((e) => e.key)).toEqual(['p/a\u{10000}']);
  });

  it('compareUtf8 orders as UTF-8 bytes do', () => {
    const next = random(5);
    const alphabet = [
      'a',
      'z',
      '/',
      '~',
      '\u00e9',
      '\u07ff',
      '\u0800',
      '\ud7ff',
      '\ue000',
      '\ufffd',
      '\u{10000}',
      '\u{1f600}',
      '\u{10ffff}',
    ];
    for (let i = 0; i < 2000; i++) {
      const word = (): string =>
        Array.from({ length: Math.floor(next() * 4) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
      const a = word();
      const b = word();
      expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
  });
});
