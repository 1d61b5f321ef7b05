import type { ObjectChange } from '../common/object-change';

export type RunStatus = 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'aborted' | 'interrupted';
export type RunTrigger = 'api' | 'schedule' | 'startup';
export type RunOperation = 'download' | 'delete' | 'skip' | 'refuse';
export type RunItemStatus = 'success' | 'failed' | 'skipped' | 'planned';

export interface RunCounts {
  listed: number;
  /** Objects the run decided to download / delete (planned work). */
  toDownload: number;
  toDelete: number;
  bytesToDownload: number;
  downloaded: number;
  deleted: number;
  skipped: number;
  failed: number;
  refused: number;
  /** Listed but left out by SYNC_INCLUDE / SYNC_EXCLUDE or the run's own filter. */
  excluded: number;
  /** Archived (GLACIER, DEEP_ARCHIVE, Intelligent-Tiering archive tiers) and not restored: not fetched. */
  archived: number;
  bytesDownloaded: number;
}

export const emptyCounts = (): RunCounts => ({
  listed: 0,
  toDownload: 0,
  toDelete: 0,
  bytesToDownload: 0,
  downloaded: 0,
  deleted: 0,
  skipped: 0,
  failed: 0,
  refused: 0,
  excluded: 0,
  archived: 0,
  bytesDownloaded: 0,
});

export interface RunRecord {
  id: string;
  prefix: string;
  trigger: RunTrigger;
  dryRun: boolean;
  status: RunStatus;
  message?: string;
  startedAt: Date;
  finishedAt?: Date;
  counts: RunCounts;
}

export interface RunItem {
  operation: RunOperation;
  key: string;
  status: RunItemStatus;
  message?: string;
}

export interface RunTotals {
  runs: number;
  failedRuns: number;
}

export type EventSource = 'webhook' | 'sqs';
/** `failed`: parked after a failed attempt, retried at `retryAt`; `dead`: given up, until an operator retries it. */
export type InboxStatus = 'pending' | 'failed' | 'dead';

/** An accepted S3 change not yet applied to the mirror. */
export interface InboxEntry {
  id: string;
  source: EventSource;
  change: ObjectChange;
  receivedAt: Date;
  attempts: number;
  status: InboxStatus;
  lastError?: string;
  /** When a parked entry is next tried. */
  retryAt?: Date;
}

export type NewInboxEntry = Pick<InboxEntry, 'id' | 'source' | 'change' | 'receivedAt'>;

export type LedgerStatus = 'pending' | 'synced' | 'delivering' | 'delivered' | 'failed' | 'dead';

/** Delivery of one file version (fileId = bucket/key@etag). */
export interface LedgerEntry {
  fileId: string;
  key: string;
  status: LedgerStatus;
  recordsParsed: number;
  recordsSent: number;
  recordsFailed: number;
  /** Batches 0..batchesAcked-1 are acknowledged (or dead-lettered): the checkpoint to resume from. */
  batchesAcked: number;
  attempts: number;
  lastError?: string;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt?: Date;
}

export type ClaimResult = 'claimed' | 'completed' | 'held';

export type BreakerPhase = 'closed' | 'open' | 'half-open';

export interface BreakerState {
  name: string;
  state: BreakerPhase;
  /** Consecutive failures while closed. */
  failures: number;
  openedAt: number;
  /** While half-open: until when the probe's owner holds it. */
  probeUntil: number;
  /** Bumped on every write; writes are conditional on it (compare-and-set). */
  version: number;
}

/** A committed file version waiting for (or assigned to) a bundle. */
export interface BundleMember {
  fileId: string;
  key: string;
  size: number;
  addedAt: Date;
  bundleId?: string;
}

export type BundleStatus = 'sealed' | 'archived' | 'posted' | 'failed';

export interface BundleRecord {
  id: string;
  status: BundleStatus;
  files: number;
  bytes: number;
  archiveKey?: string;
  archiveBytes?: number;
  attempts: number;
  lastError?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface BundleCounts {
  waitingFiles: number;
  bundles: Partial<Record<BundleStatus, number>>;
}

/** A record or a batch that could not be delivered, kept until an operator redrives it. */
export interface DeadLetter {
  id: string;
  at: string;
  /** `record`: a line that could not be parsed; `batch`: a batch the downstream did not take. */
  kind: 'record' | 'batch';
  fileId: string;
  key: string;
  line?: number;
  batchNo?: number;
  firstLine?: number;
  lastLine?: number;
  reason: string;
  attempts: number;
  /** The raw line, or the batch body as it was sent ('' when it is kept in `payloadRef`). */
  payload: string;
  /** A payload too large for the store, kept in a file under STATE_DIR of the replica that made it. */
  payloadRef?: string;
  redrivenAt?: string;
}

/** What every state port answers: whether its backend is reachable (readiness). */
abstract class StatePort {
  abstract ping(): Promise<void>;
}

/**
 * The state ports. Each service depends on the narrow ports it uses; a backend implements one or
 * several. Local state (runs of this replica's syncs, its webhook inbox) is always SQLite; shared
 * state (ledger, claims, bundles, breakers, leases) is SQLite for one process or DynamoDB for
 * several (STATE_BACKEND). The contract suites in state.ports.testing.ts are what any backend must
 * pass. Each abstract class is its own DI token.
 */
export abstract class RunStore extends StatePort {
  abstract createRun(run: RunRecord): Promise<void>;
  abstract updateRun(id: string, patch: Partial<Pick<RunRecord, 'status' | 'message' | 'finishedAt' | 'counts'>>): Promise<void>;
  abstract getRun(id: string): Promise<RunRecord | undefined>;
  abstract listRuns(limit: number): Promise<RunRecord[]>;
  abstract appendRunItems(runId: string, items: readonly RunItem[]): Promise<void>;
  /** Items in the order they were appended. */
  abstract getRunItems(runId: string, offset: number, limit: number): Promise<RunItem[]>;
  abstract runTotals(): Promise<RunTotals>;
  /** Deletes all but the newest `keep` finished runs and their items; returns how many runs went. */
  abstract pruneRuns(keep: number): Promise<number>;
  /** Marks runs left `running` by a previous process as `interrupted`, finished `at`; returns how many. */
  abstract interruptStaleRuns(message: string, at: Date): Promise<number>;
}

/** Accepted webhook events not yet applied: they survive a crash. */
export abstract class EventInbox extends StatePort {
  /** Records accepted events durably, all or none; when it resolves they survive a crash. */
  abstract inboxAdd(entries: readonly NewInboxEntry[]): Promise<void>;
  /** Entries with this status in the order they were added, after the entry `afterId` when given. */
  abstract inboxList(status: InboxStatus, limit: number, afterId?: string): Promise<InboxEntry[]>;
  /** Forgets applied (or deliberately dropped) entries. */
  abstract inboxRemove(ids: readonly string[]): Promise<void>;
  /**
   * Counts a failed attempt and moves the entry out of the way of pending work: parked (`failed`)
   * until `retryAt`, or `dead` without one.
   */
  abstract inboxRecordFailure(id: string, error: string, retryAt: Date | undefined): Promise<void>;
  /**
   * Puts parked entries back to `pending`: those due by `dueBy`, or every one, and the dead ones too
   * with `includeDead` (an operator's retry); returns how many.
   */
  abstract inboxRetryFailed(options?: { dueBy?: Date; includeDead?: boolean }): Promise<number>;
  abstract inboxCounts(): Promise<Record<InboxStatus, number>>;
  /**
   * Records a webhook request's signature until `expiresAt` (the end of its timestamp window);
   * false when it was recorded before and has not expired: the request is a replay.
   */
  abstract firstSeen(signature: string, expiresAt: Date, now: Date): Promise<boolean>;
}

/** Delivery of each file version: the per-file status and the checkpoint to resume from. */
export abstract class DeliveryLedger extends StatePort {
  abstract ledgerGet(fileId: string): Promise<LedgerEntry | undefined>;
  /** The newest entry for a key (any version). */
  abstract ledgerLatestForKey(key: string): Promise<LedgerEntry | undefined>;
  abstract ledgerPut(entry: LedgerEntry): Promise<void>;
  /** Entries with one of these statuses, oldest update first. */
  abstract ledgerByStatus(statuses: readonly LedgerStatus[], limit: number): Promise<LedgerEntry[]>;
  abstract ledgerCounts(): Promise<Partial<Record<LedgerStatus, number>>>;
}

/** Who delivers a file version: IN_PROGRESS with a lease, COMPLETED for the idempotency window. */
export abstract class IdempotencyClaims extends StatePort {
  /**
   * Claims `id` for `owner` until `nowMs + leaseMs`, conditionally: granted when there is no claim,
   * when the claim expired, when `owner` already holds it, or when `force` is set; a COMPLETED claim
   * that has not expired answers 'completed', an unexpired claim of another owner 'held'.
   */
  abstract claim(id: string, owner: string, nowMs: number, leaseMs: number, force: boolean): Promise<ClaimResult>;
  /** Marks the claim COMPLETED until `expiresAtMs` (the idempotency window), if `owner` holds it. */
  abstract completeClaim(id: string, owner: string, expiresAtMs: number): Promise<boolean>;
  /** Drops `owner`'s claim so that another attempt may take it at once. */
  abstract releaseClaim(id: string, owner: string): Promise<void>;
}

/** Which committed files wait for a bundle, and the bundles themselves. */
export abstract class BundleStore extends StatePort {
  /** Records a file version for bundling; false when it is already recorded (a version is bundled once). */
  abstract bundleAddMember(member: Omit<BundleMember, 'bundleId'>): Promise<boolean>;
  /** Members not yet in a bundle, oldest first. */
  abstract bundlePendingMembers(limit: number): Promise<BundleMember[]>;
  /**
   * Creates `bundle` with those of `fileIds` that are still unassigned, each taken conditionally;
   * returns how many it took (0: another sealer took them first, and no bundle is left).
   */
  abstract bundleSeal(bundle: BundleRecord, fileIds: readonly string[]): Promise<number>;
  abstract bundleMembers(bundleId: string): Promise<BundleMember[]>;
  abstract bundlePut(bundle: BundleRecord): Promise<void>;
  abstract bundlesByStatus(statuses: readonly BundleStatus[], limit: number): Promise<BundleRecord[]>;
  /** Files recorded but not yet in a bundle, and bundles per status. */
  abstract bundleCounts(): Promise<BundleCounts>;
}

/** Circuit breaker state, written by compare-and-set so that replicas share one breaker. */
export abstract class BreakerStore extends StatePort {
  abstract breakerGet(name: string): Promise<BreakerState | undefined>;
  /** Writes `next` only if the stored version is still `expectedVersion` (0 = no row yet). */
  abstract breakerCompareAndSet(next: BreakerState, expectedVersion: number): Promise<boolean>;
}

/** Named leases (the scheduled full sync runs under one): one holder at a time, taken over once expired. */
export abstract class LeaseStore extends StatePort {
  /** Takes or renews `name` for `owner` until `nowMs + leaseMs`; false while another owner's lease lasts. */
  abstract acquireLease(name: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean>;
  /** Gives the lease up, if `owner` holds it. */
  abstract releaseLease(name: string, owner: string): Promise<void>;
}

/** Dead letters, oldest first; shared between replicas like the ledger, so every replica lists the same. */
export abstract class DeadLetterStore extends StatePort {
  abstract deadLetterAdd(letter: DeadLetter): Promise<void>;
  /** A page of every dead letter, oldest first, and how many there are. */
  abstract deadLetterList(offset: number, limit: number): Promise<{ total: number; letters: DeadLetter[] }>;
  /** Batches not yet redriven, oldest first. */
  abstract deadLetterPendingBatches(limit: number): Promise<DeadLetter[]>;
  abstract deadLetterMarkRedriven(ids: readonly string[], at: Date): Promise<void>;
}
