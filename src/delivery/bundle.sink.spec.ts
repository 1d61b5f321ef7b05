import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../config/app-config';
import { SqliteStateStore } from '../state/sqlite/sqlite.state-store';
import { sqliteAt } from '../state/state.ports.testing';
import type { BundleRecord } from '../state/state.ports';
import type { BundleArchive } from './bundle.archive';
import type { BundleBuilder, Spooled } from './bundle.builder';
import type { BundlePoster } from './bundle.poster';
import { BundleSink } from './bundle.sink';
import { SettableClock } from '../../test/support/clocks';

/** Service-level spec: the bundle scheduler on a real SQLite BundleStore, with fakes of the builder, the archive and the poster. */

describe('BundleSink (fakes of the builder, the archive and the poster)', () => {
  let dir: string;
  let db: ReturnType<typeof sqliteAt>;
  let store: SqliteStateStore;
  let clock: SettableClock;
  let sink: BundleSink;
  const calls = { built: [] as string[][], archived: [] as string[], posted: [] as string[] };
  let postFailures = 0;
  let archiveFailures = 0;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bundle-sink-'));
    db = sqliteAt(dir);
    store = new SqliteStateStore(db);
    clock = new SettableClock();
    Object.assign(calls, { built: [], archived: [], posted: [] });
    postFailures = 0;
    archiveFailures = 0;
    const config = {
      s3: { bucket: 'b' },
      bundles: {
        url: 'http://ingest.invalid/',
        archiveBucket: 'archive',
        patterns: ['**'],
        maxFiles: 2,
        maxBytes: 1 << 20,
        maxAgeMs: 60_000,
      },
      delivery: { retryBaseMs: 1000, retryMaxMs: 60_000 },
    } as unknown as AppConfig;
    const builder = {
      build: async (_id: string, members: Array<{ key: string }>): Promise<Spooled> => {
        calls.built.push(members.map((m) => m.key));
        return { kind: 'memory', data: Buffer.from('gz') };
      },
      discard: async () => undefined,
    } as unknown as BundleBuilder;
    const archive = {
      keyFor: (b: BundleRecord) => `bundles/${b.id}.tar.gz`,
      store: async (key: string) => {
        if (archiveFailures-- > 0) throw new Error('archive bucket unreachable');
        calls.archived.push(key);
      },
      open: async () => ({ body: Buffer.from('gz'), length: 2 }),
    } as unknown as BundleArchive;
    const poster = {
      post: async (bundle: BundleRecord, body: () => Promise<unknown>) => {
        await body();
        if (postFailures-- > 0) throw new Error('endpoint answered 503');
        calls.posted.push(bundle.id);
      },
    } as unknown as BundlePoster;
    sink = new BundleSink(config, store, builder, archive, poster, clock);
  });
  afterEach(async () => {
    await sink.beforeApplicationShutdown();
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const commit = (key: string) => sink.fileCommitted({ fileId: `b/${key}@e`, key, etag: 'e', bytes: 10, verifiedBy: 'md5' });
  /** One pass, awaited. */
  const pass = async (): Promise<void> => {
    sink.kick();
    await sink.idle();
  };
  const bundles = () => store.bundlesByStatus(['sealed', 'archived', 'posted', 'failed'], 10);

  it('seals a full bundle, builds it, archives it and posts it', async () => {
    await store.bundleAddMember({ fileId: 'b/a@e', key: 'a', size: 10, addedAt: clock.now() });
    await store.bundleAddMember({ fileId: 'b/c@e', key: 'c', size: 10, addedAt: clock.now() });
    await pass();
    expect(calls.built).toEqual([['a', 'c']]);
    expect(calls.archived).toHaveLength(1);
    expect(await bundles()).toEqual([expect.objectContaining({ status: 'posted', files: 2, attempts: 1, archiveKey: calls.archived[0] })]);
    expect(calls.posted).toHaveLength(1);
  });

  it('waits while a bundle is neither full nor old', async () => {
    await store.bundleAddMember({ fileId: 'b/a@e', key: 'a', size: 10, addedAt: clock.now() });
    await pass();
    expect(await bundles()).toEqual([]);
    expect(calls.built).toEqual([]);
  });

  it('retries a failed post from the archived copy after its backoff, without building it again', async () => {
    postFailures = 1;
    await store.bundleAddMember({ fileId: 'b/a@e', key: 'a', size: 10, addedAt: clock.now() });
    await store.bundleAddMember({ fileId: 'b/c@e', key: 'c', size: 10, addedAt: clock.now() });
    await pass();
    expect(await bundles()).toEqual([expect.objectContaining({ status: 'failed', attempts: 1, lastError: 'endpoint answered 503' })]);
    clock.ms += 1000; // the first retry waits RETRY_BASE_MS * 2
    await pass();
    expect(calls.posted).toEqual([]);
    clock.ms += 1000;
    await pass();
    expect(calls.built).toHaveLength(1);
    expect(calls.posted).toHaveLength(1);
    expect(await bundles()).toEqual([expect.objectContaining({ status: 'posted', attempts: 2 })]);
  });

  it('keeps a bundle that could not be archived sealed, and builds it again on the next pass', async () => {
    archiveFailures = 1;
    await store.bundleAddMember({ fileId: 'b/a@e', key: 'a', size: 10, addedAt: clock.now() });
    await store.bundleAddMember({ fileId: 'b/c@e', key: 'c', size: 10, addedAt: clock.now() });
    await pass();
    expect(await bundles()).toEqual([expect.objectContaining({ status: 'sealed', attempts: 1, lastError: 'archive bucket unreachable' })]);
    await pass();
    expect(calls.built).toHaveLength(2);
    expect(await bundles()).toEqual([expect.objectContaining({ status: 'posted' })]);
  });

  it('records committed files that match the patterns for bundling', async () => {
    commit('x.jsonl');
    commit('x.jsonl');
    for (let i = 0; i < 100 && (await store.bundleCounts()).waitingFiles === 0; i++) await new Promise((r) => setImmediate(r));
    expect(await store.bundleCounts()).toMatchObject({ waitingFiles: 1 });
  });
});
