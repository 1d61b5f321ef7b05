import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { InboxEntry, InboxStatus, NewInboxEntry, RunItem, RunRecord, RunTotals, StateStore } from '../state-store';
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
  progress: string;
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
    counts: JSON.parse(r.counts) as RunRecord['counts'],
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
  };
}

/** The embedded StateStore: one process, one SQLite file. */
@Injectable()
export class SqliteStateStore extends StateStore {
  private readonly getRunStmt: Statement<[string], RunRow>;
  private readonly nextSeqStmt: Statement<[string], { next: number }>;
  private readonly insertItemStmt: Statement<[string, number, string, string, string, string | null]>;
  private readonly inboxInsertStmt: Statement<[string, string, string, number]>;
  private readonly inboxSeqStmt: Statement<[string], { seq: number }>;
  private readonly inboxListStmt: Statement<[InboxStatus, number, number], InboxRow>;
  private readonly inboxDeleteStmt: Statement<[string]>;

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
      'SELECT id, source, change, received_at, attempts, status, last_error FROM inbox WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    this.inboxDeleteStmt = sqlite.db.prepare('DELETE FROM inbox WHERE id = ?');
  }

  createRun(run: RunRecord): Promise<void> {
    this.sqlite.db
      .prepare(
        `INSERT INTO runs (id, prefix, trigger, dry_run, status, message, started_at, finished_at, counts, progress)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')`,
      )
      .run(run.id, run.prefix, run.trigger, run.dryRun ? 1 : 0, run.status, run.message ?? null, run.startedAt.getTime(),
        run.finishedAt?.getTime() ?? null, JSON.stringify(run.counts));
    return Promise.resolve();
  }

  updateRun(id: string, patch: Partial<Pick<RunRecord, 'status' | 'message' | 'finishedAt' | 'counts'>>): Promise<void> {
    this.sqlite.db
      .prepare(
        `UPDATE runs SET status = COALESCE(@status, status), message = COALESCE(@message, message),
           finished_at = COALESCE(@finishedAt, finished_at), counts = COALESCE(@counts, counts) WHERE id = @id`,
      )
      .run({
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
    const rows = this.sqlite.db.prepare('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as RunRow[];
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
    const rows = this.sqlite.db
      .prepare('SELECT operation, key, status, message FROM run_items WHERE run_id = ? ORDER BY seq LIMIT ? OFFSET ?')
      .all(runId, limit, offset) as Array<RunItem & { message: string | null }>;
    return Promise.resolve(rows.map((r) => ({ ...r, message: r.message ?? undefined })));
  }

  runTotals(): Promise<RunTotals> {
    const row = this.sqlite.db
      .prepare(`SELECT COUNT(*) AS runs, SUM(status IN ('failed', 'completed_with_errors', 'interrupted')) AS failedRuns FROM runs`)
      .get() as { runs: number; failedRuns: number | null };
    return Promise.resolve({ runs: row.runs, failedRuns: row.failedRuns ?? 0 });
  }

  pruneRuns(keep: number): Promise<number> {
    // run_items go with their run (ON DELETE CASCADE).
    const info = this.sqlite.db
      .prepare(
        `DELETE FROM runs WHERE status != 'running' AND id NOT IN (
           SELECT id FROM runs WHERE status != 'running' ORDER BY started_at DESC LIMIT ?)`,
      )
      .run(keep);
    return Promise.resolve(info.changes);
  }

  interruptStaleRuns(message: string): Promise<number> {
    const info = this.sqlite.db
      .prepare(`UPDATE runs SET status = 'interrupted', message = ?, finished_at = ? WHERE status = 'running'`)
      .run(message, Date.now());
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

  inboxRecordFailure(id: string, error: string, park: boolean): Promise<void> {
    this.sqlite.db
      .prepare(`UPDATE inbox SET attempts = attempts + 1, last_error = ?, status = CASE WHEN ? THEN 'failed' ELSE status END WHERE id = ?`)
      .run(error, park ? 1 : 0, id);
    return Promise.resolve();
  }

  inboxRetryFailed(): Promise<number> {
    return Promise.resolve(this.sqlite.db.prepare(`UPDATE inbox SET status = 'pending' WHERE status = 'failed'`).run().changes);
  }

  inboxCounts(): Promise<Record<InboxStatus, number>> {
    const rows = this.sqlite.db.prepare('SELECT status, COUNT(*) AS n FROM inbox GROUP BY status').all() as Array<{ status: InboxStatus; n: number }>;
    const counts: Record<InboxStatus, number> = { pending: 0, failed: 0 };
    for (const r of rows) counts[r.status] = r.n;
    return Promise.resolve(counts);
  }
}
