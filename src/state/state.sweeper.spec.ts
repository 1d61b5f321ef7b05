import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import { ManifestStore } from './manifest.store';
import { SqliteDatabase } from './sqlite/sqlite.database';
import { SqliteStateStore } from './sqlite/sqlite.state-store';
import { StateSweeper } from './state.sweeper';
import type { LedgerEntry } from './state.ports';
import { FixedClock } from '../../test/support/clocks';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 31);

describe('StateSweeper (real SQLite)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteStateStore;
  let manifest: ManifestStore;
  let sweeper: StateSweeper;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sweeper-'));
    const config = new AppConfig(validateEnv({ S3_BUCKET_NAME: 'test-bucket', STATE_DIR: dir, STATUS_TTL_DAYS: '30' }));
    db = new SqliteDatabase(config);
    store = new SqliteStateStore(db);
    manifest = new ManifestStore(db);
    sweeper = new StateSweeper(config, store, manifest, new FixedClock(new Date(NOW)));
  });
  afterEach(() => {
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const ledger = (fileId: string, updatedMs: number): LedgerEntry => ({
    fileId,
    key: fileId,
    status: 'delivered',
    recordsParsed: 1,
    recordsSent: 1,
    recordsFailed: 0,
    batchesAcked: 1,
    attempts: 1,
    createdAt: new Date(updatedMs),
    updatedAt: new Date(updatedMs),
  });

  it('removes what is past its window and keeps the rest', async () => {
    await store.ledgerPut(ledger('old', NOW - 31 * DAY));
    await store.ledgerPut(ledger('recent', NOW - 29 * DAY));
    await store.claim('expired', 'r', NOW - 2 * DAY, 1000, false);
    await store.claim('live', 'r', NOW, 60_000, false);
    manifest.recordSequencer('gone-key', '00AA', new Date(NOW - 40 * DAY));
    manifest.recordSequencer('late-key', '00AB', new Date(NOW - DAY));
    manifest.flush();

    expect(sweeper.sweep()).toMatchObject({ ledger: 1, claims: 1, sequencers: 1 });
    await expect(store.ledgerGet('old')).resolves.toBeUndefined();
    await expect(store.ledgerGet('recent')).resolves.toBeDefined();
    await expect(store.claim('live', 'other', NOW, 1000, false)).resolves.toBe('held');
    expect(manifest.lastSequencer('gone-key')).toBeUndefined();
    expect(manifest.lastSequencer('late-key')).toBe('00AB');
    expect(sweeper.sweep()).toMatchObject({ ledger: 0, claims: 0, sequencers: 0 });
  });
});
