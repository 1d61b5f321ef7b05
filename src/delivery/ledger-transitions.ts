/**
 * The delivery ledger's transitions: what a file version's entry becomes at each step of its life,
 * as pure functions (no I/O; see ledger-transitions.spec.ts). DeliveryService reads the entry,
 * asks here, and writes what comes back; `undefined` means "leave the entry as it is".
 *
 *   (none) ─download starts─► pending ─not committed─► failed
 *     │                          │                        │
 *     └──────────committed───────┴──────committed─────────┴─► synced ─claimed─► delivering
 *                                                                                 │
 *                       delivered ◄─all batches acknowledged─┤├─some dead-lettered─► dead
 *                                                           failed ◄─error─┘
 */
import type { LedgerEntry } from '../state/state.ports';

export type DeliveryProgress = Pick<LedgerEntry, 'recordsParsed' | 'recordsSent' | 'recordsFailed' | 'batchesAcked'>;

/**
 * Whether a commit of this version starts its delivery afresh: nothing recorded yet, on its way to
 * the mirror (`pending`), or `failed` (not mirrored, or its delivery failed).
 */
export function awaitsCommit(entry: LedgerEntry | undefined): boolean {
  return !entry || entry.status === 'pending' || entry.status === 'failed';
}

/** Committed or being delivered when a process stopped: the next start resumes it. */
export function isUnfinished(entry: LedgerEntry): boolean {
  return entry.status === 'synced' || entry.status === 'delivering';
}

/** A fresh entry with nothing delivered, keeping the attempts and creation time of an earlier one. */
function fresh(fileId: string, key: string, now: Date, earlier: LedgerEntry | undefined): LedgerEntry {
  return {
    fileId,
    key,
    status: 'synced',
    recordsParsed: 0,
    recordsSent: 0,
    recordsFailed: 0,
    batchesAcked: 0,
    attempts: earlier?.attempts ?? 0,
    createdAt: earlier?.createdAt ?? now,
    updatedAt: now,
  };
}

/** A version on its way to the mirror is `pending`; one already committed or delivering keeps its status. */
export function downloadStarting(existing: LedgerEntry | undefined, fileId: string, key: string, now: Date): LedgerEntry | undefined {
  if (!awaitsCommit(existing)) return undefined;
  return { ...fresh(fileId, key, now, existing), status: 'pending', lastError: undefined };
}

/** The pending version was not committed: `failed`, with why, until a later sync fetches it. */
export function notCommitted(existing: LedgerEntry | undefined, reason: string, now: Date): LedgerEntry | undefined {
  if (existing?.status !== 'pending') return undefined;
  return { ...existing, status: 'failed', lastError: `not mirrored: ${reason}`, updatedAt: now };
}

export type CommitDecision =
  /** Write `entry` (status synced, from the first batch) and deliver it. */
  | { action: 'deliver'; entry: LedgerEntry }
  /** Already known: resume it if unfinished and not under way here, else nothing. */
  | { action: 'keep'; entry: LedgerEntry };

/** A committed version, or an operator's reprocess (which starts again from the first batch). */
export function committed(existing: LedgerEntry | undefined, fileId: string, key: string, now: Date, reprocess: boolean): CommitDecision {
  if (existing && !reprocess && !awaitsCommit(existing)) return { action: 'keep', entry: existing };
  return { action: 'deliver', entry: fresh(fileId, key, now, existing) };
}

export function deliveryStarted(current: LedgerEntry, now: Date): LedgerEntry {
  return { ...current, status: 'delivering', lastError: undefined, attempts: current.attempts + 1, updatedAt: now };
}

/** Checkpoint written while delivering: the entry is this delivery's own while it holds the claim. */
export function checkpoint(current: LedgerEntry, progress: DeliveryProgress, now: Date): LedgerEntry {
  return { ...current, ...progress, updatedAt: now };
}

/** Every batch settled: `dead` when any of them was dead-lettered. */
export function deliveryFinished(current: LedgerEntry, progress: DeliveryProgress, deadBatches: number, now: Date): LedgerEntry {
  return { ...current, ...progress, status: deadBatches > 0 ? 'dead' : 'delivered', deliveredAt: now, updatedAt: now };
}

export function deliveryFailed(current: LedgerEntry, error: string, now: Date): LedgerEntry {
  return { ...current, status: 'failed', lastError: error, updatedAt: now };
}

/**
 * Dead-lettered batches of the file were sent again: their records count as sent, and a `dead`
 * file whose every dead batch went is `delivered`. (Unparseable lines stay failed: they were never sent.)
 */
export function redriven(current: LedgerEntry, records: number, batchesLeft: number, now: Date): LedgerEntry {
  const status = current.status === 'dead' && batchesLeft === 0 ? 'delivered' : current.status;
  return {
    ...current,
    status,
    recordsSent: current.recordsSent + records,
    recordsFailed: Math.max(0, current.recordsFailed - records),
    updatedAt: now,
  };
}

/** The idempotency claim says it was delivered within the window (by this or another replica). */
export function alreadyDelivered(current: LedgerEntry, now: Date): LedgerEntry {
  return { ...current, status: 'delivered', updatedAt: now };
}

/**
 * Which batches of a file are acknowledged: batches 0..acked-1 are done (sent or dead-lettered),
 * the checkpoint a restart resumes from. Batches settle out of order; the checkpoint moves only
 * over an unbroken run, so a crash resends at most what was in flight.
 */
export class Checkpoint {
  private readonly settled = new Set<number>();
  private next: number;

  constructor(readonly resumeAt: number) {
    this.next = resumeAt;
  }

  get acked(): number {
    return this.next;
  }

  /** Sent or dead-lettered before the restart: skipped now. */
  handledBefore(batchNo: number): boolean {
    return batchNo < this.resumeAt;
  }

  settle(batchNo: number): void {
    this.settled.add(batchNo);
    while (this.settled.delete(this.next)) this.next++;
  }
}
