import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStateContracts, sqliteAt } from '../state.ports.testing';
import { SqliteStateStore } from './sqlite.state-store';

describeStateContracts('sqlite', ['runs', 'inbox', 'ledger', 'claims', 'bundles', 'breakers', 'leases', 'deadLetters'], async () => {
  const dir = mkdtempSync(join(tmpdir(), 'state-store-'));
  const db = sqliteAt(dir);
  const store = new SqliteStateStore(db);
  return {
    ports: { runs: store, inbox: store, ledger: store, claims: store, bundles: store, breakers: store, leases: store, deadLetters: store },
    close: async () => {
      db.onApplicationShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteDatabase', () => {
  it('migrates a new file and opens an existing one without migrating again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-db-'));
    const first = sqliteAt(dir);
    const version = first.db.pragma('user_version', { simple: true });
    expect(version).toBeGreaterThan(0);
    expect(first.db.pragma('journal_mode', { simple: true })).toBe('wal');
    first.onApplicationShutdown();
    const second = sqliteAt(dir);
    expect(second.db.pragma('user_version', { simple: true })).toBe(version);
    second.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });
});
