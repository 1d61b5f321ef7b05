import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import type { ChecksumMethod } from '../aws/checksums';
import { compareUtf8 } from '../common/utf8-order';
import { SqliteDatabase } from './sqlite/sqlite.database';

export type VerificationMethod =
  /** The ETag of a single-part upload, which is the MD5 of the bytes. */
  | 'md5'
  | 'multipart-etag'
  /** An S3 full-object checksum (see S3_CHECKSUMS). */
  | ChecksumMethod
  | 'size'
  | 'none'
  /** A local file of equal size and mtime found without a manifest row (rclone's rule). */
  | 'adopted';

/** What the mirror knows about one committed local file. */
export interface ManifestEntry {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
  versionId?: string;
  sequencer?: string;
  checksum?: string;
  verifiedBy: VerificationMethod;
  localPath: string;
  syncedAt: Date;
}

interface Row {
  key: string;
  etag: string;
  size: number;
  last_modified: number;
  version_id: string | null;
  sequencer: string | null;
  checksum: string | null;
  verified_by: VerificationMethod;
  local_path: string;
  synced_at: number;
}

function toEntry(r: Row): ManifestEntry {
  return {
    key: r.key,
    etag: r.etag,
    size: r.size,
    lastModified: new Date(r.last_modified),
    versionId: r.version_id ?? undefined,
    sequencer: r.sequencer ?? undefined,
    checksum: r.checksum ?? undefined,
    verifiedBy: r.verified_by,
    localPath: r.local_path,
    syncedAt: new Date(r.synced_at),
  };
}

/**
 * Keys under `prefix` as a range [prefix, upper): SQLite compares TEXT by its UTF-8 bytes, which is
 * code point order, so the successor of the last code point bounds every key that starts with it.
 * (LIKE would be case-insensitive for ASCII and could not use the primary key.)
 */
function prefixRange(prefix: string): { lo: string; hi: string | null } {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return { lo: prefix, hi: points.join('') + String.fromCodePoint(next) };
    }
  }
  return { lo: prefix, hi: null };
}

/**
 * Manifest rows (alias m) under a prefix range that a run's staged listing does not contain, and
 * that were committed by the time the run began: a file an event brought in while the run was listing
 * may sort before the listing's position, and is newer than anything the listing could say.
 */
const NOT_LISTED = `m.key >= @lo AND (@hi IS NULL OR m.key < @hi) AND m.synced_at <= @since
  AND NOT EXISTS (SELECT 1 FROM listing l WHERE l.run_id = @runId AND l.key = m.key)`;

/** What a sync compares for one manifest row. */
export interface CommittedRow {
  key: string;
  etag: string;
  size: number;
}

/**
 * The manifest: key -> what was committed locally. Local state, so always in the SQLite file beside
 * the mirror. A sync finds deletions in one of two ways (see ListingReconciler): walking the
 * manifest in key order beside a listing in key order and recording the rows the listing skipped
 * in `unlisted`, or, for an endpoint that lists in no order, staging every listed key in `listing`.
 */
@Injectable()
export class ManifestStore {
  /**
   * Committed entries not yet written: one transaction per event-loop turn instead of one per file
   * (an autocommit cost ~40 us a row). A crash can lose only entries whose files are already in
   * place, which the next sync adopts (same size and mtime) or downloads again.
   */
  private readonly pending = new Map<string, ManifestEntry>();
  private flushScheduled = false;
  private readonly getStmt: Statement<[string], Row>;
  private readonly committedStmt: Statement<[string], { etag: string; size: number }>;
  private readonly upsertStmt: Statement<Row>;
  private readonly deleteStmt: Statement<[string]>;
  private readonly stageStmt: Statement<[string, string]>;
  private readonly committedManyStmt: Statement<[string], { key: string; etag: string; size: number }>;
  private readonly goneStmt: Statement<{ lo: string; hi: string | null; after: string; runId: string; since: number }, Row>;
  private readonly goneCountStmt: Statement<{ lo: string; hi: string | null; runId: string; since: number }, { n: number }>;
  /** By which bounds it has: SQLite bounds an index search only by terms without OR. */
  private readonly rangeStmts = new Map<string, Statement<Record<string, string | number>, CommittedRow>>();
  private readonly unlistStmt: Statement<[string, string]>;
  private readonly unlistedStmt: Statement<{ runId: string; since: number; after: string }, Row>;
  private readonly unlistedCountStmt: Statement<{ runId: string; since: number }, { n: number }>;
  private readonly pageStmt: Statement<{ lo: string; hi: string | null; after: string; limit: number }, Row>;
  private readonly totalsStmt: Statement<[], { files: number; bytes: number | null }>;
  private readonly sequencerStmt: Statement<[string], { sequencer: string }>;
  private readonly recordSequencerStmt: Statement<[string, string, number]>;

  constructor(private readonly sqlite: SqliteDatabase) {
    const db = sqlite.db;
    sqlite.onClose(() => this.flush());
    this.getStmt = db.prepare('SELECT * FROM manifest WHERE key = ?');
    this.committedStmt = db.prepare('SELECT etag, size FROM manifest WHERE key = ?');
    this.upsertStmt = db.prepare(
      `INSERT INTO manifest (key, etag, size, last_modified, version_id, sequencer, checksum, verified_by, local_path, synced_at)
       VALUES (@key, @etag, @size, @last_modified, @version_id, @sequencer, @checksum, @verified_by, @local_path, @synced_at)
       ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, size = excluded.size, last_modified = excluded.last_modified,
         version_id = excluded.version_id, sequencer = excluded.sequencer, checksum = excluded.checksum,
         verified_by = excluded.verified_by, local_path = excluded.local_path, synced_at = excluded.synced_at`,
    );
    this.deleteStmt = db.prepare('DELETE FROM manifest WHERE key = ?');
    // A page of keys goes in as one JSON array: one statement a page instead of one a key (a call into
    // SQLite costs about 3 us, most of it crossing from JavaScript; `npm run bench:scale`).
    this.stageStmt = db.prepare('INSERT OR IGNORE INTO listing (run_id, key) SELECT ?, value FROM json_each(?)');
    this.committedManyStmt = db.prepare('SELECT m.key, m.etag, m.size FROM json_each(?) j JOIN manifest m ON m.key = j.value');
    this.goneStmt = db.prepare(`SELECT m.* FROM manifest m WHERE ${NOT_LISTED} AND m.key > @after ORDER BY m.key LIMIT 500`);
    this.goneCountStmt = db.prepare(`SELECT COUNT(*) AS n FROM manifest m WHERE ${NOT_LISTED}`);
    this.unlistStmt = db.prepare('INSERT OR IGNORE INTO unlisted (run_id, key) SELECT ?, value FROM json_each(?)');
    const unlisted = 'FROM unlisted u JOIN manifest m ON m.key = u.key WHERE u.run_id = @runId AND m.synced_at <= @since';
    this.unlistedStmt = db.prepare(`SELECT m.* ${unlisted} AND u.key > @after ORDER BY u.key LIMIT 500`);
    this.unlistedCountStmt = db.prepare(`SELECT COUNT(*) AS n ${unlisted}`);
    this.pageStmt = db.prepare(
      `SELECT * FROM manifest WHERE key >= @lo AND (@hi IS NULL OR key < @hi) AND key > @after ORDER BY key LIMIT @limit`,
    );
    this.totalsStmt = db.prepare('SELECT COUNT(*) AS files, SUM(size) AS bytes FROM manifest');
    this.sequencerStmt = db.prepare('SELECT sequencer FROM key_sequencers WHERE key = ?');
    this.recordSequencerStmt = db.prepare(
      `INSERT INTO key_sequencers (key, sequencer, applied_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET sequencer = excluded.sequencer, applied_at = excluded.applied_at`,
    );
  }

  /** Just what a sync compares (etag, size): one small row read per listed key. */
  committed(key: string): { etag: string; size: number } | undefined {
    return this.pending.get(key) ?? this.committedStmt.get(key);
  }

  /** `committed` for a page of keys, in one query: the keys the manifest has, with their etag and size. */
  committedMany(keys: readonly string[]): Map<string, { etag: string; size: number }> {
    const found = new Map<string, { etag: string; size: number }>();
    for (const row of this.committedManyStmt.iterate(JSON.stringify(keys))) found.set(row.key, row);
    if (this.pending.size > 0) {
      for (const key of keys) {
        const pending = this.pending.get(key);
        if (pending) found.set(key, pending);
      }
    }
    return found;
  }

  get(key: string): ManifestEntry | undefined {
    const pending = this.pending.get(key);
    if (pending) return pending;
    const row = this.getStmt.get(key);
    return row ? toEntry(row) : undefined;
  }

  put(e: ManifestEntry): void {
    this.pending.set(e.key, e);
    if (this.pending.size >= 512) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes pending entries now; every query that reads more than one key calls it first. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0 || !this.sqlite.db.open) return;
    const entries = [...this.pending.values()];
    this.pending.clear();
    this.sqlite.db.transaction(() => {
      for (const e of entries) this.write(e);
    })();
  }

  private write(e: ManifestEntry): void {
    this.upsertStmt.run({
      key: e.key,
      etag: e.etag,
      size: e.size,
      last_modified: e.lastModified.getTime(),
      version_id: e.versionId ?? null,
      sequencer: e.sequencer ?? null,
      checksum: e.checksum ?? null,
      verified_by: e.verifiedBy,
      local_path: e.localPath,
      synced_at: e.syncedAt.getTime(),
    });
  }

  remove(key: string): void {
    this.pending.delete(key);
    this.deleteStmt.run(key);
  }

  /** Records the keys a run has listed so far (one transaction per page). */
  stageListing(runId: string, keys: readonly string[]): void {
    this.stageStmt.run(runId, JSON.stringify(keys));
  }

  /** Manifest entries under `prefix`, committed at or before `sinceMs`, that the run's listing did not contain, in key order. */
  *missingFromListing(runId: string, prefix: string, sinceMs: number): Generator<ManifestEntry> {
    this.flush();
    let after = '';
    for (;;) {
      const rows = this.goneStmt.all({ ...prefixRange(prefix), after, runId, since: sinceMs });
      for (const r of rows) yield toEntry(r);
      if (rows.length < 500) return;
      after = rows[rows.length - 1].key;
    }
  }

  /**
   * Up to `limit` rows under `prefix` after `after` ('' = from the start) and up to `upTo`
   * inclusive (null = to the end of the prefix), in key order.
   */
  committedRange(prefix: string, after: string, upTo: string | null, limit: number): CommittedRow[] {
    this.flush();
    const { lo, hi } = prefixRange(prefix);
    // One bound each way: of two, SQLite starts the index search at one and filters by the other,
    // scanning up to the end of the prefix on every page.
    const fromAfter = after !== '' && compareUtf8(after, lo) >= 0;
    const toUpTo = upTo !== null && (hi === null || compareUtf8(upTo, hi) < 0);
    const params: Record<string, string | number> = { limit };
    const bounds: string[] = [];
    if (fromAfter) {
      bounds.push('key > @after');
      params.after = after;
    } else {
      bounds.push('key >= @lo');
      params.lo = lo;
    }
    if (toUpTo) {
      bounds.push('key <= @upTo');
      params.upTo = upTo;
    } else if (hi !== null) {
      bounds.push('key < @hi');
      params.hi = hi;
    }
    const where = bounds.join(' AND ');
    let stmt = this.rangeStmts.get(where);
    if (!stmt) {
      stmt = this.sqlite.db.prepare(`SELECT key, etag, size FROM manifest WHERE ${where} ORDER BY key LIMIT @limit`);
      this.rangeStmts.set(where, stmt);
    }
    return stmt.all(params);
  }

  /** Records manifest keys a run's listing went past without listing them. */
  recordUnlisted(runId: string, keys: readonly string[]): void {
    if (keys.length > 0) this.unlistStmt.run(runId, JSON.stringify(keys));
  }

  /**
   * The entries `recordUnlisted` recorded that are still committed as they were when the run
   * began (at or before `sinceMs`): an event may have brought one back since. In key order.
   */
  *unlisted(runId: string, sinceMs: number): Generator<ManifestEntry> {
    this.flush();
    let after = '';
    for (;;) {
      const rows = this.unlistedStmt.all({ runId, since: sinceMs, after });
      for (const r of rows) yield toEntry(r);
      if (rows.length < 500) return;
      after = rows[rows.length - 1].key;
    }
  }

  countUnlisted(runId: string, sinceMs: number): number {
    this.flush();
    return this.unlistedCountStmt.get({ runId, since: sinceMs })?.n ?? 0;
  }

  /**
   * Turns a walk into a staged listing: every row under `prefix` up to `upTo` that the walk did
   * not record as unlisted was listed, so it is staged, and the walk's records are dropped.
   */
  stageWalked(runId: string, prefix: string, upTo: string): void {
    this.flush();
    const db = this.sqlite.db;
    db.transaction(() => {
      db.prepare(
        `INSERT OR IGNORE INTO listing (run_id, key)
         SELECT @runId, m.key FROM manifest m WHERE m.key >= @lo AND (@hi IS NULL OR m.key < @hi) AND m.key <= @upTo
           AND NOT EXISTS (SELECT 1 FROM unlisted u WHERE u.run_id = @runId AND u.key = m.key)`,
      ).run({ ...prefixRange(prefix), runId, upTo });
      db.prepare('DELETE FROM unlisted WHERE run_id = ?').run(runId);
    })();
  }

  /** Drops every staged listing: at start-up, when no run can be going, this clears what a crash left. */
  clearAllListings(): void {
    this.sqlite.db.prepare('DELETE FROM listing').run();
    this.sqlite.db.prepare('DELETE FROM unlisted').run();
  }

  /** How many entries `missingFromListing` would yield, counted in one query. */
  countMissingFromListing(runId: string, prefix: string, sinceMs: number): number {
    this.flush();
    return this.goneCountStmt.get({ ...prefixRange(prefix), runId, since: sinceMs })?.n ?? 0;
  }

  /** Drops what a run staged or recorded. */
  clearListing(runId: string): void {
    this.sqlite.db.prepare('DELETE FROM listing WHERE run_id = ?').run(runId);
    this.sqlite.db.prepare('DELETE FROM unlisted WHERE run_id = ?').run(runId);
  }

  /** Every entry under `prefix`, in key order, read a page at a time. */
  *entries(prefix: string): Generator<ManifestEntry> {
    let after = '';
    for (;;) {
      const rows = this.page(prefix, after, 500);
      yield* rows;
      if (rows.length < 500) return;
      after = rows[rows.length - 1].key;
    }
  }

  /** A page of entries in key order, starting after `after`. */
  page(prefix: string, after: string, limit: number): ManifestEntry[] {
    this.flush();
    return this.pageStmt.all({ ...prefixRange(prefix), after, limit }).map(toEntry);
  }

  /** How many files are committed under `prefix`. */
  count(prefix: string): number {
    this.flush();
    const row = this.sqlite.db
      .prepare('SELECT COUNT(*) AS n FROM manifest WHERE key >= @lo AND (@hi IS NULL OR key < @hi)')
      .get(prefixRange(prefix)) as { n: number };
    return row.n;
  }

  totals(): { files: number; bytes: number } {
    this.flush();
    const t = this.totalsStmt.get();
    return { files: t?.files ?? 0, bytes: t?.bytes ?? 0 };
  }

  /**
   * Forgets the last sequencers of keys that are gone from the mirror since before `beforeMs`. A
   * sequencer outlives its delete to refuse a late, older create; S3 delivers events within minutes,
   * so after STATUS_TTL_DAYS nothing older can still arrive.
   */
  sweepSequencers(beforeMs: number): number {
    return this.sqlite.db
      .prepare('DELETE FROM key_sequencers WHERE applied_at <= ? AND key NOT IN (SELECT key FROM manifest)')
      .run(beforeMs).changes;
  }

  /**
   * The sequencer of the last S3 event applied to `key`. Kept apart from the manifest row because
   * it must outlive a delete: a late ObjectCreated older than the delete must still be refused.
   */
  lastSequencer(key: string): string | undefined {
    return this.sequencerStmt.get(key)?.sequencer;
  }

  recordSequencer(key: string, sequencer: string, at: Date): void {
    this.recordSequencerStmt.run(key, sequencer, at.getTime());
  }

  /** Entries committed at or after `sinceMs`, in key order, a page at a time. */
  *committedSince(sinceMs: number): Generator<ManifestEntry> {
    this.flush();
    const stmt = this.sqlite.db.prepare('SELECT * FROM manifest WHERE key > ? AND synced_at >= ? ORDER BY key LIMIT 500');
    let after = '';
    for (;;) {
      const rows = stmt.all(after, sinceMs) as Row[];
      for (const r of rows) yield toEntry(r);
      if (rows.length < 500) return;
      after = rows[rows.length - 1].key;
    }
  }
}
