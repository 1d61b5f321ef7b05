import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import PQueue from 'p-queue';
import picomatch from 'picomatch';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { AppError, errorMessage, NotFoundError, ShuttingDownError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { fileIdOf, FileCommitted, RemoteObject } from '../mirror/file-version';
import { Metrics } from '../metrics/metrics.service';
import { MirrorService } from '../mirror/mirror.service';
import { ReadThrough } from '../sync/read-through.service';
import { LocalValues, ReplicaIdentity } from '../state/local-values.service';
import { DeliveryLedger, IdempotencyClaims, LedgerEntry, LedgerStatus } from '../state/state.ports';
import { DeadLetters } from './dead-letters.service';
import { FileDelivery } from './file-delivery';
import * as ledger from './ledger-transitions';
import { RecordsSink } from './records.sink';
import { inCurrentTrace, traced } from '../tracing/tracing';

const RESUME_PAGE = 200;

export interface RedriveReport {
  redriven: number;
  failed: number;
}

/** Another owner holds the file's claim now (this replica's lease ran out): it stops delivering the file. */
export class ClaimLostError extends AppError {
  constructor(fileId: string) {
    super('CONFLICT', `the delivery claim of ${fileId} is held by another replica now`, { fileId });
  }
}

/**
 * Delivers the records of committed files downstream. Each file version (fileId) is claimed in the
 * IdempotencyClaims (IN_PROGRESS with a lease renewed while delivering, COMPLETED for
 * IDEMPOTENCY_TTL_DAYS), then delivered by a FileDelivery from the ledger's checkpoint, with at most
 * DELIVERY_CONCURRENCY requests in flight across all files. The ledger's transitions are decided in
 * ledger-transitions.ts; this class reads, asks there and writes.
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly files: PQueue;
  private readonly requests: PQueue;
  private readonly matches: (key: string) => boolean;
  private readonly replicaId: string;
  /** When delivery was first enabled on this mirror: files committed before it are not delivered. */
  private readonly deliverySince: number;
  private readonly shutdown = new AbortController();
  /** fileIds queued or being delivered by this process. */
  private readonly active = new Set<string>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly mirror: MirrorService,
    private readonly ledgerStore: DeliveryLedger,
    private readonly claims: IdempotencyClaims,
    private readonly sink: RecordsSink,
    private readonly deadLetters: DeadLetters,
    private readonly clock: Clock,
    replica: ReplicaIdentity,
    localValues: LocalValues,
    private readonly readThrough: ReadThrough,
    private readonly metrics: Metrics,
  ) {
    const { concurrency, patterns } = config.delivery;
    this.files = new PQueue({ concurrency });
    this.requests = new PQueue({ concurrency });
    const matchers = patterns.map((p) => picomatch(p, { dot: true }));
    this.matches = (key) => matchers.some((m) => m(key));
    // Kept with the local state, so that a restarted replica takes over its own claims at once.
    this.replicaId = replica.id;
    this.deliverySince = this.enabled ? Number(localValues.getOrCreate('delivery-since', () => String(clock.nowMs()))) : 0;
  }

  get enabled(): boolean {
    return Boolean(this.config.delivery.url);
  }

  /** MirrorEvents: a listed or notified version starts downloading. */
  async downloadStarting(object: RemoteObject): Promise<void> {
    const fileId = this.trackedFileId(object.key, object.etag);
    if (!fileId) return;
    const next = ledger.downloadStarting(await this.ledgerStore.ledgerGet(fileId), fileId, object.key, this.clock.now());
    if (next) await this.ledgerStore.ledgerPut(next);
  }

  /** MirrorEvents: the download ended without that version being committed. */
  async notCommitted(object: RemoteObject, reason: string): Promise<void> {
    const fileId = this.trackedFileId(object.key, object.etag);
    if (!fileId) return;
    const next = ledger.notCommitted(await this.ledgerStore.ledgerGet(fileId), reason, this.clock.now());
    if (next) await this.ledgerStore.ledgerPut(next);
  }

  /** MirrorEvents: a version was committed; its delivery is queued. */
  fileCommitted(committed: FileCommitted): void {
    detach(this.enqueue(committed.key, committed.etag, false), this.logger, 'could not queue delivery', { fileId: committed.fileId });
  }

  /** The fileId of a version this service delivers; undefined for other keys and for versions without an ETag. */
  private trackedFileId(key: string, etag: string): string | undefined {
    return etag && this.matches(key) ? fileIdOf(this.config.s3.bucket, key, etag) : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    // Files committed, or being delivered, when the process last stopped.
    const unfinished = await this.ledgerStore.ledgerByStatus(['synced', 'delivering'], RESUME_PAGE);
    for (const entry of unfinished) this.schedule(entry, false);
    if (unfinished.length > 0) this.logger.log({ files: unfinished.length }, 'resuming deliveries');
    detach(this.reconcile(), this.logger, 'delivery reconciliation failed');
    if (this.readThrough.enabled) {
      // Replicas: what another replica committed and never finished is taken over here.
      this.sweeper = setInterval(
        () => detach(this.sweepAbandoned(), this.logger, 'sweep of abandoned deliveries failed'),
        this.config.delivery.claimLeaseMs,
      );
      this.sweeper.unref();
    }
  }

  /**
   * Files committed (by any replica) whose delivery has not moved for a whole claim lease: their
   * replica died or lost them. Each is scheduled here; its claim decides whether this replica takes
   * it over (a live owner keeps it), and the file is fetched first when this replica lacks it.
   */
  async sweepAbandoned(): Promise<number> {
    const staleBefore = this.clock.nowMs() - this.config.delivery.claimLeaseMs;
    let scheduled = 0;
    // `pending` too: a replica that died between its commit and the ledger's `synced` leaves it so.
    for (const entry of await this.ledgerStore.ledgerByStatus(['pending', 'synced', 'delivering'], RESUME_PAGE)) {
      if (entry.updatedAt.getTime() > staleBefore || this.active.has(entry.fileId) || !this.matches(entry.key)) continue;
      this.schedule(entry, false);
      scheduled++;
    }
    return scheduled;
  }

  /**
   * A crash between a file's commit and its ledger entry would leave it undelivered: files committed
   * since delivery was first enabled that have no ledger entry are queued at start-up.
   */
  private async reconcile(): Promise<void> {
    let queued = 0;
    for (const committed of this.mirror.committedSince(this.deliverySince)) {
      if (this.shutdown.signal.aborted) return;
      if (!this.matches(committed.key)) continue;
      const recorded = await this.ledgerStore.ledgerGet(committed.fileId);
      if (recorded && recorded.status !== 'pending') continue;
      await this.enqueue(committed.key, committed.etag, false);
      queued++;
    }
    if (queued > 0) this.logger.warn({ files: queued }, 'queued committed files that had no delivery record');
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    this.shutdown.abort(new ShuttingDownError());
    this.files.clear();
    await this.files.onIdle();
  }

  /** Queues the delivery of a committed file version (no-op for keys the patterns exclude). */
  async enqueue(key: string, etag: string, reprocess: boolean): Promise<LedgerEntry | undefined> {
    if (!this.enabled || !this.matches(key)) return undefined;
    const fileId = fileIdOf(this.config.s3.bucket, key, etag);
    const decision = ledger.committed(await this.ledgerStore.ledgerGet(fileId), fileId, key, this.clock.now(), reprocess);
    if (decision.action === 'keep') {
      if (!this.active.has(fileId) && ledger.isUnfinished(decision.entry)) this.schedule(decision.entry, false);
      return decision.entry;
    }
    await this.ledgerStore.ledgerPut(decision.entry);
    this.schedule(decision.entry, reprocess);
    return decision.entry;
  }

  /** Delivers the current version of `key` again from its first batch. */
  async reprocess(key: string): Promise<LedgerEntry> {
    if (!this.enabled) throw new NotFoundError('delivery is not configured (CALL_DETAILS_URL)');
    const committed = this.mirror.committedVersion(key);
    if (!committed) throw new NotFoundError(`${key} is not in the mirror`);
    const entry = await this.enqueue(key, committed.etag, true);
    if (!entry) throw new NotFoundError(`${key} does not match DELIVERY_PATTERNS`);
    return entry;
  }

  async status(fileId: string): Promise<LedgerEntry> {
    const entry = await this.ledgerStore.ledgerGet(fileId);
    if (!entry) throw new NotFoundError(`no delivery recorded for ${fileId}`);
    return entry;
  }

  async statusOfKey(key: string): Promise<LedgerEntry> {
    const entry = await this.ledgerStore.ledgerLatestForKey(key);
    if (!entry) throw new NotFoundError(`no delivery recorded for ${key}`);
    return entry;
  }

  async counts(): Promise<Partial<Record<LedgerStatus, number>>> {
    return this.ledgerStore.ledgerCounts();
  }

  /** Sends the dead-lettered batches again, under their original Idempotency-Keys, and brings their files' ledger up to date. */
  async redrive(): Promise<RedriveReport> {
    const letters = await this.deadLetters.pendingBatches();
    const done: string[] = [];
    const perFile = new Map<string, { records: number; left: number }>();
    for (const letter of letters) {
      const file = perFile.get(letter.fileId) ?? { records: 0, left: 0 };
      perFile.set(letter.fileId, file);
      try {
        await this.sink.send(letter.payload, `${letter.fileId}#${letter.batchNo}`, this.shutdown.signal);
        done.push(letter.id);
        file.records += recordsIn(letter.payload);
      } catch (err) {
        file.left++;
        this.logger.warn({ id: letter.id, err: errorMessage(err) }, 'redrive failed');
      }
    }
    await this.deadLetters.markRedriven(done);
    for (const [fileId, { records, left }] of perFile) {
      if (records === 0) continue;
      const current = await this.ledgerStore.ledgerGet(fileId);
      if (current) await this.ledgerStore.ledgerPut(ledger.redriven(current, records, left, this.clock.now()));
    }
    return { redriven: done.length, failed: letters.length - done.length };
  }

  private schedule(entry: LedgerEntry, force: boolean): void {
    if (this.active.has(entry.fileId) && !force) return;
    this.active.add(entry.fileId);
    detach(
      this.files
        .add(
          inCurrentTrace(() =>
            traced('delivery.file', { 'delivery.file_id': entry.fileId }, () => this.deliver(entry.fileId, entry.key, force)),
          ),
        )
        .finally(() => this.active.delete(entry.fileId)),
      this.logger,
      'delivery crashed',
      { fileId: entry.fileId },
    );
  }

  private async deliver(fileId: string, key: string, force: boolean): Promise<void> {
    if (this.shutdown.signal.aborted) return;
    const leaseMs = this.config.delivery.claimLeaseMs;
    const claim = await this.claims.claim(fileId, this.replicaId, this.clock.nowMs(), leaseMs, force);
    if (claim !== 'claimed') {
      if (claim === 'completed') this.logger.log({ fileId }, 'already delivered within the idempotency window');
      else this.logger.debug({ fileId }, 'being delivered by another replica');
      if (claim === 'completed') await this.update(fileId, (e) => ledger.alreadyDelivered(e, this.clock.now()));
      return;
    }
    // Stopped by the shutdown or by the loss of the claim, whichever comes first.
    const stop = new AbortController();
    const onShutdown = (): void => stop.abort(this.shutdown.signal.reason);
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    const renewal = setInterval(() => detach(this.renewClaim(fileId, stop), this.logger, 'claim renewal failed', { fileId }), leaseMs / 3);
    renewal.unref();
    try {
      const started = await this.update(fileId, (e) => ledger.deliveryStarted(e, this.clock.now()));
      const { absPath } = await this.readThrough.open(key, { fileId });
      const { deadBatches, ...progress } = await new FileDelivery(started, this.fileDeliveryDeps(), stop.signal).run(absPath);
      const now = this.clock.now();
      await this.update(fileId, (e) => ledger.deliveryFinished(e, progress, deadBatches, now));
      await this.claims.completeClaim(fileId, this.replicaId, now.getTime() + this.config.delivery.idempotencyTtlMs);
      this.logger.log({ fileId, records: progress.recordsSent, failed: progress.recordsFailed }, 'file delivered');
    } catch (err) {
      // Stopped by the shutdown: the entry stays `delivering` and resumes at its checkpoint. Claim
      // lost: the replica that holds it now delivers from the same checkpoint.
      if (this.shutdown.signal.aborted) return;
      if (stop.signal.reason instanceof ClaimLostError) {
        this.logger.warn({ fileId }, stop.signal.reason.message);
        return;
      }
      await this.update(fileId, (e) => ledger.deliveryFailed(e, errorMessage(err), this.clock.now()));
      await this.claims.releaseClaim(fileId, this.replicaId);
      this.logger.error({ fileId, err: errorMessage(err) }, 'delivery failed');
    } finally {
      clearInterval(renewal);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  /** Extends this replica's lease on the claim; a claim another replica took over stops the delivery. */
  private async renewClaim(fileId: string, stop: AbortController): Promise<void> {
    if (stop.signal.aborted) return;
    const claim = await this.claims.claim(fileId, this.replicaId, this.clock.nowMs(), this.config.delivery.claimLeaseMs, false);
    if (claim !== 'claimed') stop.abort(new ClaimLostError(fileId));
  }

  private fileDeliveryDeps(): ConstructorParameters<typeof FileDelivery>[1] {
    const { maxRecordsPerBatch, maxBatchBytes, maxRetries, deadLetterAfterMs, retryMaxMs } = this.config.delivery;
    return {
      ledger: this.ledgerStore,
      sink: this.sink,
      deadLetters: this.deadLetters,
      clock: this.clock,
      metrics: this.metrics,
      requests: this.requests,
      maxRecordsPerBatch,
      maxBatchBytes,
      maxRetries,
      deadLetterAfterMs,
      retryMaxMs,
    };
  }

  private async update(fileId: string, next: (current: LedgerEntry) => LedgerEntry): Promise<LedgerEntry> {
    const current = await this.ledgerStore.ledgerGet(fileId);
    if (!current) throw new Error(`ledger entry ${fileId} vanished`);
    const entry = next(current);
    await this.ledgerStore.ledgerPut(entry);
    return entry;
  }
}

/** How many records a dead-lettered batch body carries (see batcher.ts batchBody). */
function recordsIn(payload: string): number {
  try {
    const batchSize = (JSON.parse(payload) as { batchSize?: unknown }).batchSize;
    return typeof batchSize === 'number' ? batchSize : 0;
  } catch {
    return 0;
  }
}
