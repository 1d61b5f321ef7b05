import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from '../../config/app-config';
import { MIGRATIONS } from './migrations';

/** The embedded database under STATE_DIR: WAL mode, migrated on open. */
@Injectable()
export class SqliteDatabase implements OnApplicationShutdown {
  readonly db: Database.Database;
  private readonly beforeClose: Array<() => void> = [];

  constructor(config: AppConfig) {
    mkdirSync(config.state.dir, { recursive: true });
    this.db = new Database(join(config.state.dir, 'state.db'));
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL survives a process crash; only an OS crash can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    // better-sqlite3 builds SQLite with a 16 MB page cache, which a manifest of a million keys
    // fills: SQLite's own 2 MB serves the syncs' in-order walks as fast (the file's pages stay in
    // the OS's cache) and keeps 16-20 MB off the peak RSS (no-op re-sync of 1,000,000 keys,
    // `SCALE_FULL_MAX=0 node bench/scale.mjs`: 11.0-11.5 s, 179-183 MiB against 11.5-11.7 s, 201-206 MiB).
    this.db.pragma('cache_size = -2000');
    this.migrate();
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Runs `hook` (write what is buffered) just before the database closes. */
  onClose(hook: () => void): void {
    this.beforeClose.push(hook);
  }

  /**
   * Closed in the last shutdown phase: services stop their work (and write their final state) in
   * beforeApplicationShutdown, which Nest runs for every module before any onApplicationShutdown.
   */
  onApplicationShutdown(): void {
    if (!this.db.open) return;
    for (const hook of this.beforeClose) hook();
    this.db.close();
  }
}
