import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import {
  emptyCounts,
  BreakerState,
  BundleMember,
  BundleRecord,
  BundleCounts,
  BundleStatus,
  InboxEntry,
  InboxStatus,
  LedgerEntry,
  LedgerStatus,
  NewInboxEntry,
  RunItem,
  RunRecord,
  RunTotals,
  BreakerStore,
  BundleStore,
  DeadLetter,
  DeadLetterStore,
  DeliveryLedger,
  EventInbox,
  IdempotencyClaims,
  LeaseStore,
  RunStore,
} from '../state.ports';
import { ClaimRecord, ConditionalOwnership, LeaseRecord } from '../claim-rules';
import { SqliteDatabase } from './sqlite.database';

interface RunRow {
  id: string;
  prefix: string;
  trigger: RunRecord['trigger'];
  dry_run: number;
  status: RunRecord['status'];
  message: string | null;
  started_at: number;
  finished_at: number | null;
  counts: string;
}

function toRun(r: RunRow): RunRecord {
  return {
    id: r.id,
    prefix: r.prefix,
    trigger: r.trigger,
    dryRun: r.dry_run === 1,
    status: r.status,
    message: r.message ?? undefined,
    startedAt: new Date(r.started_at),
    finishedAt: r.finished_at === null ? undefined : new Date(r.finished_at),
    // Rows written before a count existed read it as 0.
    counts: { ...emptyCounts(), ...(JSON.parse(r.counts) as Partial<RunRecord['counts']>) },
  };
}

interface InboxRow {
  id: string;
  source: InboxEntry['source'];
  change: string;
  received_at: number;
  attempts: number;
  status: InboxStatus;
  last_error: string | null;
  retry_at: number | null;
}

function toInboxEntry(r: InboxRow): InboxEntry {
  return {
    id: r.id,
    source: r.source,
    change: JSON.parse(r.change) as InboxEntry['change'],
    receivedAt: new Date(r.received_at),
    attempts: r.attempts,
    status: r.status,
    lastError: r.last_error ?? undefined,
    retryAt: r.retry_at === null ? undefined : new Date(r.retry_at),
  };
}

interface LedgerRow {
  file_id: string;
  key: string;
  status: LedgerStatus;
  records_parsed: number;
  records_sent: number;
  records_failed: number;
  batches_acked: number;
  attempts: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

function toLedger(r: LedgerRow): LedgerEntry {
  return {
    fileId: r.file_id,
    key: r.key,
    status: r.status,
    recordsParsed: r.records_parsed,
    recordsSent: r.records_sent,
    recordsFailed: r.records_failed,
    batchesAcked: r.batches_acked,
    attempts: r.attempts,
    lastError: r.last_error ?? undefined,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    deliveredAt: r.delivered_at === null ? undefined : new Date(r.delivered_at),
  };
}

interface MemberRow {
  file_id: string;
  key: string;
  size: number;
  added_at: number;
  bundle_id: string | null;
}

const toMember = (r: MemberRow): BundleMember => ({
  fileId: r.file_id,
  key: r.key,
  size: r.size,
  addedAt: new Date(r.added_at),
  bundleId: r.bundle_id ?? undefined,
});

interface BundleRow {
  id: string;
  status: BundleStatus;
  files: number;
  bytes: number;
  archive_key: string | null;
  archive_bytes: number | null;
  attempts: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const toBundle = (r: BundleRow): BundleRecord => ({
  id: r.id,
  status: r.status,
  files: r.files,
  bytes: r.bytes,
  archiveKey: r.archive_key ?? undefined,
  archiveBytes: r.archive_bytes ?? undefined,
  attempts: r.attempts,
  lastError: r.last_error ?? undefined,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/** Every state port on one SQLite file: the local state always, the shared state for one process. */
@Injectable()
export class SqliteStateStore
  extends ConditionalOwnership
  implements RunStore, EventInbox, DeliveryLedger, IdempotencyClaims, BundleStore, BreakerStore, LeaseStore, DeadLetterStore
{
  private readonly getRunStmt: Statement<[string], RunRow>;
  private readonly nextSeqStmt: Statement<[string], { next: number }>;
  private readonly insertItemStmt: Statement<[string, number, string, string, string, string | null]>;
  private readonly inboxInsertStmt: Statement<[string, string, string, number]>;
  private readonly inboxSeqStmt: Statement<[string], { seq: number }>;
  private readonly inboxListStmt: Statement<[InboxStatus, number, number], InboxRow>;
  private readonly inboxDeleteStmt: Statement<[string]>;
  private readonly ledgerPutStmt: Statement<LedgerRow>;

  /** Prepared once, reused: preparing a statement costs more than running it. */
  private readonly statements = new Map<string, Statement>();

  private stmt(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.sqlite.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  constructor(private readonly sqlite: SqliteDatabase) {
    super();
    this.getRunStmt = sqlite.db.prepare('SELECT * FROM runs WHERE id = ?');
    this.nextSeqStmt = sqlite.db.prepare('SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM run_items WHERE run_id = ?');
    this.insertItemStmt = sqlite.db.prepare(
      'INSERT INTO run_items (run_id, seq, operation, key, status, message) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.inboxInsertStmt = sqlite.db.prepare('INSERT INTO inbox (id, source, change, received_at) VALUES (?, ?, ?, ?)');
    this.inboxSeqStmt = sqlite.db.prepare('SELECT seq FROM inbox WHERE id = ?');
    this.inboxListStmt = sqlite.db.prepare(
      'SELECT id, source, change, received_at, attempts, status, last_error, retry_at FROM inbox WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    this.inboxDeleteStmt = sqlite.db.prepare('DELETE FROM inbox WHERE id = ?');
    this.ledgerPutStmt = sqlite.db.prepare(
      `INSERT INTO ledger (file_id, key, status, records_parsed, records_sent, records_failed, batches_acked, attempts, last_error,
         created_at, updated_at, delivered_at)
       VALUES (@file_id, @key, @status, @records_parsed, @records_sent, @records_failed, @batches_acked, @attempts, @last_error,
         @created_at, @updated_at, @delivered_at)
       ON CONFLICT (file_id) DO UPDATE SET key = excluded.key, status = excluded.status, records_parsed = excluded.records_parsed,
         records_sent = excluded.records_sent, records_failed = excluded.records_failed, batches_acked = excluded.batches_acked,
         attempts = excluded.attempts, last_error = excluded.last_error, updated_at = excluded.updated_at,
         delivered_at = excluded.delivered_at`,
    );
  }

  createRun(run: RunRecord): Promise<void> {
    this.stmt(
      `INSERT INTO runs (id, prefix, trigger, dry_run, status, message, started_at, finished_at, counts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      run.id,
      run.prefix,
      run.trigger,
      run.dryRun ? 1 : 0,
      run.status,
      run.message ?? null,
      run.startedAt.getTime(),
      run.finishedAt?.getTime() ?? null,
      JSON.stringify(run.counts),
    );
    return Promise.resolve();
  }

  updateRun(id: string, patch: Partial<Pick<RunRecord, 'status' | 'message' | 'finishedAt' | 'counts'>>): Promise<void> {
    this.stmt(
      `UPDATE runs SET status = COALESCE(@status, status), message = COALESCE(@message, message),
           finished_at = COALESCE(@finishedAt, finished_at), counts = COALESCE(@counts, counts) WHERE id = @id`,
    ).run({
      id,
      status: patch.status ?? null,
      message: patch.message ?? null,
      finishedAt: patch.finishedAt?.getTime() ?? null,
      counts: patch.counts ? JSON.stringify(patch.counts) : null,
    });
    return Promise.resolve();
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    const row = this.getRunStmt.get(id);
    return Promise.resolve(row ? toRun(row) : undefined);
  }

  listRuns(limit: number): Promise<RunRecord[]> {
    const rows = this.stmt('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as RunRow[];
    return Promise.resolve(rows.map(toRun));
  }

  appendRunItems(runId: string, items: readonly RunItem[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    this.sqlite.db.transaction(() => {
      let seq = this.nextSeqStmt.get(runId)?.next ?? 0;
      for (const i of items) this.insertItemStmt.run(runId, seq++, i.operation, i.key, i.status, i.message ?? null);
    })();
    return Promise.resolve();
  }

  getRunItems(runId: string, offset: number, limit: number): Promise<RunItem[]> {
    const rows = this.stmt('SELECT operation, key, status, message FROM run_items WHERE run_id = ? ORDER BY seq LIMIT ? OFFSET ?').all(
      runId,
      limit,
      offset,
    ) as Array<RunItem & { message: string | null }>;
    return Promise.resolve(rows.map((r) => ({ ...r, message: r.message ?? undefined })));
  }

  runTotals(): Promise<RunTotals> {
    const row = this.stmt(
      `SELECT COUNT(*) AS runs, SUM(status IN ('failed', 'completed_with_errors', 'interrupted')) AS failedRuns FROM runs`,
    ).get() as { runs: number; failedRuns: number | null };
    return Promise.resolve({ runs: row.runs, failedRuns: row.failedRuns ?? 0 });
  }

  pruneRuns(keep: number): Promise<number> {
    // run_items go with their run (ON DELETE CASCADE).
    const info = this.stmt(
      `DELETE FROM runs WHERE status != 'running' AND id NOT IN (
           SELECT id FROM runs WHERE status != 'running' ORDER BY started_at DESC LIMIT ?)`,
    ).run(keep);
    return Promise.resolve(info.changes);
  }

  interruptStaleRuns(message: string, at: Date): Promise<number> {
    const info = this.stmt(`UPDATE runs SET status = 'interrupted', message = ?, finished_at = ? WHERE status = 'running'`).run(
      message,
      at.getTime(),
    );
    return Promise.resolve(info.changes);
  }

  inboxAdd(entries: readonly NewInboxEntry[]): Promise<void> {
    this.sqlite.db.transaction(() => {
      for (const e of entries) this.inboxInsertStmt.run(e.id, e.source, JSON.stringify(e.change), e.receivedAt.getTime());
    })();
    return Promise.resolve();
  }

  inboxList(status: InboxStatus, limit: number, afterId?: string): Promise<InboxEntry[]> {
    const after = afterId === undefined ? 0 : (this.inboxSeqStmt.get(afterId)?.seq ?? 0);
    return Promise.resolve(this.inboxListStmt.all(status, after, limit).map(toInboxEntry));
  }

  inboxRemove(ids: readonly string[]): Promise<void> {
    this.sqlite.db.transaction(() => {
      for (const id of ids) this.inboxDeleteStmt.run(id);
    })();
    return Promise.resolve();
  }

  inboxRecordFailure(id: string, error: string, retryAt: Date | undefined): Promise<void> {
    this.stmt(`UPDATE inbox SET attempts = attempts + 1, last_error = ?, status = ?, retry_at = ? WHERE id = ?`).run(
      error,
      retryAt ? 'failed' : 'dead',
      retryAt?.getTime() ?? null,
      id,
    );
    return Promise.resolve();
  }

  inboxRetryFailed(options: { dueBy?: Date; includeDead?: boolean } = {}): Promise<number> {
    const statuses = options.includeDead ? `('failed', 'dead')` : `('failed')`;
    const due = options.dueBy ? 'AND retry_at <= ?' : '';
    const params = options.dueBy ? [options.dueBy.getTime()] : [];
    return Promise.resolve(
      this.stmt(`UPDATE inbox SET status = 'pending', retry_at = NULL WHERE status IN ${statuses} ${due}`).run(...params).changes,
    );
  }

  firstSeen(signature: string, expiresAt: Date, now: Date): Promise<boolean> {
    return Promise.resolve(
      this.sqlite.db.transaction(() => {
        // Expired ones go as new ones come: the table holds one tolerance window of requests.
        this.stmt('DELETE FROM webhook_signatures WHERE expires_at <= ?').run(now.getTime());
        return (
          this.stmt('INSERT OR IGNORE INTO webhook_signatures (signature, expires_at) VALUES (?, ?)').run(signature, expiresAt.getTime())
            .changes === 1
        );
      })(),
    );
  }

  inboxCounts(): Promise<Record<InboxStatus, number>> {
    const rows = this.stmt('SELECT status, COUNT(*) AS n FROM inbox GROUP BY status').all() as Array<{ status: InboxStatus; n: number }>;
    const counts: Record<InboxStatus, number> = { pending: 0, failed: 0, dead: 0 };
    for (const r of rows) counts[r.status] = r.n;
    return Promise.resolve(counts);
  }

  ledgerGet(fileId: string): Promise<LedgerEntry | undefined> {
    const row = this.stmt('SELECT * FROM ledger WHERE file_id = ?').get(fileId) as LedgerRow | undefined;
    return Promise.resolve(row ? toLedger(row) : undefined);
  }

  ledgerLatestForKey(key: string): Promise<LedgerEntry | undefined> {
    const row = this.stmt('SELECT * FROM ledger WHERE key = ? ORDER BY updated_at DESC LIMIT 1').get(key) as LedgerRow | undefined;
    return Promise.resolve(row ? toLedger(row) : undefined);
  }

  ledgerPut(e: LedgerEntry): Promise<void> {
    this.ledgerPutStmt.run({
      file_id: e.fileId,
      key: e.key,
      status: e.status,
      records_parsed: e.recordsParsed,
      records_sent: e.recordsSent,
      records_failed: e.recordsFailed,
      batches_acked: e.batchesAcked,
      attempts: e.attempts,
      last_error: e.lastError ?? null,
      created_at: e.createdAt.getTime(),
      updated_at: e.updatedAt.getTime(),
      delivered_at: e.deliveredAt?.getTime() ?? null,
    });
    return Promise.resolve();
  }

  ledgerByStatus(statuses: readonly LedgerStatus[], limit: number): Promise<LedgerEntry[]> {
    if (statuses.length === 0) return Promise.resolve([]);
    const rows = this.stmt(`SELECT * FROM ledger WHERE status IN (${statuses.map(() => '?').join(',')}) ORDER BY updated_at LIMIT ?`).all(
      ...statuses,
      limit,
    ) as LedgerRow[];
    return Promise.resolve(rows.map(toLedger));
  }

  ledgerCounts(): Promise<Partial<Record<LedgerStatus, number>>> {
    const rows = this.stmt('SELECT status, COUNT(*) AS n FROM ledger GROUP BY status').all() as Array<{ status: LedgerStatus; n: number }>;
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.status, r.n])));
  }

  protected readClaim(id: string): Promise<ClaimRecord | undefined> {
    const row = this.stmt('SELECT status, owner, expires_at, version FROM idempotency WHERE id = ?').get(id) as
      { status: ClaimRecord['status']; owner: string; expires_at: number; version: number } | undefined;
    return Promise.resolve(row && { status: row.status, owner: row.owner, expiresAt: row.expires_at, version: row.version });
  }

  protected writeClaimIf(id: string, next: ClaimRecord, expectedVersion: number): Promise<boolean> {
    const info =
      expectedVersion === 0
        ? this.stmt('INSERT OR IGNORE INTO idempotency (id, status, owner, expires_at, version) VALUES (?, ?, ?, ?, ?)').run(
            id,
            next.status,
            next.owner,
            next.expiresAt,
            next.version,
          )
        : this.stmt('UPDATE idempotency SET status = ?, owner = ?, expires_at = ?, version = ? WHERE id = ? AND version = ?').run(
            next.status,
            next.owner,
            next.expiresAt,
            next.version,
            id,
            expectedVersion,
          );
    return Promise.resolve(info.changes === 1);
  }

  completeClaim(id: string, owner: string, expiresAtMs: number): Promise<boolean> {
    const info = this.stmt(
      `UPDATE idempotency SET status = 'COMPLETED', expires_at = ?, version = version + 1 WHERE id = ? AND owner = ?`,
    ).run(expiresAtMs, id, owner);
    return Promise.resolve(info.changes === 1);
  }

  releaseClaim(id: string, owner: string): Promise<void> {
    this.stmt(`DELETE FROM idempotency WHERE id = ? AND owner = ? AND status = 'IN_PROGRESS'`).run(id, owner);
    return Promise.resolve();
  }

  deadLetterAdd(l: DeadLetter): Promise<void> {
    this.stmt(
      `INSERT INTO dead_letters (id, at, kind, file_id, key, line, batch_no, first_line, last_line, reason, attempts, payload, payload_ref, redriven_at)
       VALUES (@id, @at, @kind, @fileId, @key, @line, @batchNo, @firstLine, @lastLine, @reason, @attempts, @payload, @payloadRef, @redrivenAt)`,
    ).run({
      id: l.id,
      at: l.at,
      kind: l.kind,
      fileId: l.fileId,
      key: l.key,
      line: l.line ?? null,
      batchNo: l.batchNo ?? null,
      firstLine: l.firstLine ?? null,
      lastLine: l.lastLine ?? null,
      reason: l.reason,
      attempts: l.attempts,
      payload: l.payload,
      payloadRef: l.payloadRef ?? null,
      redrivenAt: l.redrivenAt ?? null,
    });
    return Promise.resolve();
  }

  deadLetterList(offset: number, limit: number): Promise<{ total: number; letters: DeadLetter[] }> {
    const { n } = this.stmt('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number };
    const rows = this.stmt('SELECT * FROM dead_letters ORDER BY seq LIMIT ? OFFSET ?').all(limit, offset) as DeadLetterRow[];
    return Promise.resolve({ total: n, letters: rows.map(toDeadLetter) });
  }

  deadLetterPendingBatches(limit: number): Promise<DeadLetter[]> {
    const rows = this.stmt(`SELECT * FROM dead_letters WHERE kind = 'batch' AND redriven_at IS NULL ORDER BY seq LIMIT ?`).all(
      limit,
    ) as DeadLetterRow[];
    return Promise.resolve(rows.map(toDeadLetter));
  }

  deadLetterMarkRedriven(ids: readonly string[], at: Date): Promise<void> {
    const mark = this.stmt('UPDATE dead_letters SET redriven_at = ? WHERE id = ?');
    this.sqlite.db.transaction(() => {
      for (const id of ids) mark.run(at.toISOString(), id);
    })();
    return Promise.resolve();
  }

  /**
   * DynamoDB expires rows by TTL; here the same windows are applied by a sweep (StateSweeper):
   * claims past their expiry, leases long expired, ledger rows not updated for STATUS_TTL_DAYS,
   * posted bundles and their members, and redriven dead letters, after the same window.
   */
  sweepShared(nowMs: number, statusTtlMs: number): Record<string, number> {
    const before = nowMs - statusTtlMs;
    const run = (sql: string, ...params: unknown[]): number => this.stmt(sql).run(...params).changes;
    return this.sqlite.db.transaction(() => ({
      claims: run('DELETE FROM idempotency WHERE expires_at <= ?', nowMs),
      leases: run('DELETE FROM leases WHERE expires_at <= ?', before),
      ledger: run('DELETE FROM ledger WHERE updated_at <= ?', before),
      bundleMembers: run(
        `DELETE FROM bundle_members WHERE bundle_id IN (SELECT id FROM bundles WHERE status = 'posted' AND updated_at <= ?)`,
        before,
      ),
      bundles: run(`DELETE FROM bundles WHERE status = 'posted' AND updated_at <= ?`, before),
      deadLetters: run('DELETE FROM dead_letters WHERE redriven_at IS NOT NULL AND redriven_at <= ?', new Date(before).toISOString()),
    }))();
  }

  ping(): Promise<void> {
    this.stmt('SELECT 1').get();
    return Promise.resolve();
  }

  protected readLease(name: string): Promise<LeaseRecord | undefined> {
    const row = this.stmt('SELECT owner, expires_at, version FROM leases WHERE name = ?').get(name) as
      { owner: string; expires_at: number; version: number } | undefined;
    return Promise.resolve(row && { owner: row.owner, expiresAt: row.expires_at, version: row.version });
  }

  protected writeLeaseIf(name: string, next: LeaseRecord, expectedVersion: number): Promise<boolean> {
    const info =
      expectedVersion === 0
        ? this.stmt('INSERT OR IGNORE INTO leases (name, owner, expires_at, version) VALUES (?, ?, ?, ?)').run(
            name,
            next.owner,
            next.expiresAt,
            next.version,
          )
        : this.stmt('UPDATE leases SET owner = ?, expires_at = ?, version = ? WHERE name = ? AND version = ?').run(
            next.owner,
            next.expiresAt,
            next.version,
            name,
            expectedVersion,
          );
    return Promise.resolve(info.changes === 1);
  }

  releaseLease(name: string, owner: string): Promise<void> {
    this.stmt('DELETE FROM leases WHERE name = ? AND owner = ?').run(name, owner);
    return Promise.resolve();
  }

  breakerGet(name: string): Promise<BreakerState | undefined> {
    const row = this.stmt('SELECT * FROM breakers WHERE name = ?').get(name) as
      { name: string; state: BreakerState['state']; failures: number; opened_at: number; probe_until: number; version: number } | undefined;
    return Promise.resolve(
      row && {
        name: row.name,
        state: row.state,
        failures: row.failures,
        openedAt: row.opened_at,
        probeUntil: row.probe_until,
        version: row.version,
      },
    );
  }

  breakerCompareAndSet(next: BreakerState, expectedVersion: number): Promise<boolean> {
    const params = [next.state, next.failures, next.openedAt, next.probeUntil, next.version, next.name] as const;
    const info =
      expectedVersion === 0
        ? this.stmt(
            'INSERT OR IGNORE INTO breakers (state, failures, opened_at, probe_until, version, name) VALUES (?, ?, ?, ?, ?, ?)',
          ).run(...params)
        : this.stmt(
            'UPDATE breakers SET state = ?, failures = ?, opened_at = ?, probe_until = ?, version = ? WHERE name = ? AND version = ?',
          ).run(...params, expectedVersion);
    return Promise.resolve(info.changes === 1);
  }

  bundleAddMember(m: Omit<BundleMember, 'bundleId'>): Promise<boolean> {
    const info = this.stmt('INSERT OR IGNORE INTO bundle_members (file_id, key, size, added_at) VALUES (?, ?, ?, ?)').run(
      m.fileId,
      m.key,
      m.size,
      m.addedAt.getTime(),
    );
    return Promise.resolve(info.changes === 1);
  }

  bundlePendingMembers(limit: number): Promise<BundleMember[]> {
    const rows = this.stmt('SELECT * FROM bundle_members WHERE bundle_id IS NULL ORDER BY added_at LIMIT ?').all(limit) as MemberRow[];
    return Promise.resolve(rows.map(toMember));
  }

  bundleSeal(bundle: BundleRecord, fileIds: readonly string[]): Promise<number> {
    const taken = this.sqlite.db
      .transaction((): number => {
        let n = 0;
        for (const id of fileIds)
          n += this.stmt('UPDATE bundle_members SET bundle_id = ? WHERE file_id = ? AND bundle_id IS NULL').run(bundle.id, id).changes;
        if (n > 0) this.writeBundle(bundle);
        return n;
      })
      .immediate();
    return Promise.resolve(taken);
  }

  bundleMembers(bundleId: string): Promise<BundleMember[]> {
    const rows = this.stmt('SELECT * FROM bundle_members WHERE bundle_id = ? ORDER BY added_at, file_id').all(bundleId) as MemberRow[];
    return Promise.resolve(rows.map(toMember));
  }

  bundlePut(bundle: BundleRecord): Promise<void> {
    this.writeBundle(bundle);
    return Promise.resolve();
  }

  bundleCounts(): Promise<BundleCounts> {
    const waiting = this.stmt('SELECT COUNT(*) AS n FROM bundle_members WHERE bundle_id IS NULL').get() as { n: number };
    const rows = this.stmt('SELECT status, COUNT(*) AS n FROM bundles GROUP BY status').all() as Array<{ status: BundleStatus; n: number }>;
    return Promise.resolve({ waitingFiles: waiting.n, bundles: Object.fromEntries(rows.map((r) => [r.status, r.n])) });
  }

  bundlesByStatus(statuses: readonly BundleStatus[], limit: number): Promise<BundleRecord[]> {
    if (statuses.length === 0) return Promise.resolve([]);
    const rows = this.stmt(`SELECT * FROM bundles WHERE status IN (${statuses.map(() => '?').join(',')}) ORDER BY created_at LIMIT ?`).all(
      ...statuses,
      limit,
    ) as BundleRow[];
    return Promise.resolve(rows.map(toBundle));
  }

  private writeBundle(b: BundleRecord): void {
    this.stmt(
      `INSERT INTO bundles (id, status, files, bytes, archive_key, archive_bytes, attempts, last_error, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, files = excluded.files, bytes = excluded.bytes,
         archive_key = excluded.archive_key, archive_bytes = excluded.archive_bytes, attempts = excluded.attempts,
         last_error = excluded.last_error, updated_at = excluded.updated_at`,
    ).run(
      b.id,
      b.status,
      b.files,
      b.bytes,
      b.archiveKey ?? null,
      b.archiveBytes ?? null,
      b.attempts,
      b.lastError ?? null,
      b.createdAt.getTime(),
      b.updatedAt.getTime(),
    );
  }
}

interface DeadLetterRow {
  id: string;
  at: string;
  kind: DeadLetter['kind'];
  file_id: string;
  key: string;
  line: number | null;
  batch_no: number | null;
  first_line: number | null;
  last_line: number | null;
  reason: string;
  attempts: number;
  payload: string;
  payload_ref: string | null;
  redriven_at: string | null;
}

function toDeadLetter(r: DeadLetterRow): DeadLetter {
  const letter: DeadLetter = {
    id: r.id,
    at: r.at,
    kind: r.kind,
    fileId: r.file_id,
    key: r.key,
    reason: r.reason,
    attempts: r.attempts,
    payload: r.payload,
  };
  if (r.line !== null) letter.line = r.line;
  if (r.batch_no !== null) letter.batchNo = r.batch_no;
  if (r.first_line !== null) letter.firstLine = r.first_line;
  if (r.last_line !== null) letter.lastLine = r.last_line;
  if (r.payload_ref !== null) letter.payloadRef = r.payload_ref;
  if (r.redriven_at !== null) letter.redrivenAt = r.redriven_at;
  return letter;
}
