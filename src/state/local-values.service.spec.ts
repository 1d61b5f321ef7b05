import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import { LocalValues, ReplicaIdentity } from './local-values.service';
import { SqliteDatabase } from './sqlite/sqlite.database';

describe('LocalValues and ReplicaIdentity (real SQLite)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'local-values-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = () => {
    const config = new AppConfig(validateEnv({ S3_BUCKET_NAME: 'test-bucket', STATE_DIR: dir }));
    const db = new SqliteDatabase(config);
    return { db, values: new LocalValues(db, config) };
  };

  it('keeps the replica id across restarts', () => {
    const first = open();
    const id = new ReplicaIdentity(first.values).id;
    first.db.onApplicationShutdown();
    const second = open();
    expect(new ReplicaIdentity(second.values).id).toBe(id);
    expect(second.values.getOrCreate('replica-id', () => 'other')).toBe(id);
    second.db.onApplicationShutdown();
  });

  it('takes over a value an earlier version kept in a file of its own', () => {
    writeFileSync(join(dir, 'delivery-since'), '1796000000000\n');
    const { db, values } = open();
    expect(values.getOrCreate('delivery-since', () => 'now')).toBe('1796000000000');
    db.onApplicationShutdown();
  });
});
