import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { SqliteDatabase } from './sqlite/sqlite.database';

/**
 * Small values that belong to this replica's disk (its identity, when delivery was enabled): local
 * state, so always in SQLite under STATE_DIR, whatever the shared backend.
 */
@Injectable()
export class LocalValues {
  constructor(
    private readonly sqlite: SqliteDatabase,
    private readonly config: AppConfig,
  ) {}

  /** The value kept under `name`: set the first time (from `initial`), read ever after. */
  getOrCreate(name: string, initial: () => string): string {
    const db = this.sqlite.db;
    const row = db.prepare('SELECT value FROM local_values WHERE name = ?').get(name) as { value: string } | undefined;
    if (row) return row.value;
    const value = this.fromLegacyFile(name) ?? initial();
    db.prepare('INSERT OR IGNORE INTO local_values (name, value) VALUES (?, ?)').run(name, value);
    return (db.prepare('SELECT value FROM local_values WHERE name = ?').get(name) as { value: string }).value;
  }

  /** Earlier versions kept these values in files of their own under STATE_DIR; they are taken over. */
  private fromLegacyFile(name: string): string | undefined {
    try {
      return readFileSync(join(this.config.state.dir, name), 'utf8').trim() || undefined;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }
}

/** Who this process is among the replicas: the owner of its claims and leases, stable across restarts. */
@Injectable()
export class ReplicaIdentity {
  readonly id: string;

  constructor(values: LocalValues) {
    this.id = values.getOrCreate('replica-id', () => randomUUID());
  }
}
