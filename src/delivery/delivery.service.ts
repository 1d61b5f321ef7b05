import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import PQueue from 'p-queue';
import picomatch from 'picomatch';
import { randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Clock } from '../common/clock';
import { errorMessage, isErrno, NotFoundError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { ManifestStore } from '../state/manifest.store';
import { LedgerEntry, LedgerStatus, StateStore } from '../state/state-store';
import { Mirror } from '../sync/mirror';
import { Batch, batchBody, Batcher } from './batcher';
import { DeadLetters } from './dead-letters';
import { formatOf, readRecords } from './record-reader';
import { RecordsSink } from './records.sink';

/** How long a delivery claim lasts without renewal: a replica that died is taken over after it. */
const CLAIM_LEASE_MS = 60_000;
const RESUME_PAGE = 200;

export interface RedriveReport {
  redriven: number;
  failed: number;
}

/** The unit of delivery: one object version. */
export function fileIdOf(bucket: string, key: string, etag: string): string {
  return `${bucket}/${key}@${etag}`;
}

/** A ledger entry with nothing delivered yet, keeping the attempts and creation time of an earlier one. */
function newLedgerEntry(fileId: string, key: string, now: Date, earlier: LedgerEntry | undefined): LedgerEntry {
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

/**
 * Whether a commit of this version starts its delivery afresh: nothing recorded yet, on its way to
 * the mirror (`pending`), or `failed` (not mirrored, or its delivery failed).
 */
function awaitsCommit(entry: LedgerEntry | undefined): boolean {
  return !entry || entry.status === 'pending' || entry.status === 'failed';
}

/**
 * Delivers the records of committed files downstream. Each file version (fileId) is claimed in the
 * StateStore (IN_PROGRESS with a lease, COMPLETED for IDEMPOTENCY_TTL_DAYS), read as a stream,
 * batched, and its batches are POSTed with at most DELIVERY_CONCURRENCY requests in flight across
 * all files: reading waits while the limit is reached. The ledger keeps the checkpoint (the first
 * batch not yet acknowledged), so a restart resumes there; batches after it may be sent again under
 * the same Idempotency-Key. Unparseable lines and refused batches become dead letters.
 */
@Injectable()
export class DeliveryService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
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

  constructor(
    private readonly config: AppConfig,
    private readonly mirror: Mirror,
    private readonly manifest: ManifestStore,
    private readonly store: StateStore,
    private readonly sink: RecordsSink,
    private readonly deadLetters: DeadLetters,
    private readonly clock: Clock,
  ) {
    const { concurrency, patterns } = config.delivery;
    this.files = new PQueue({ concurrency });
    this.requests = new PQueue({ concurrency });
    const matchers = patterns.map((p) => picomatch(p, { dot: true }));
    this.matches = (key) => matchers.some((m) => m(key));
    // Kept with the local state, so that a restarted replica takes over its own claims at once.
    this.replicaId = persistentValue(config.state.dir, 'replica-id', () => randomUUID());
    this.deliverySince = this.enabled ? Number(persistentValue(config.state.dir, 'delivery-since', () => String(clock.nowMs()))) : 0;
  }

  get enabled(): boolean {
    return Boolean(this.config.delivery.url);
  }

  onModuleInit(): void {
    // Before any bootstrap hook: a sync at start-up must not commit files nobody hears of.
    if (!this.enabled) return;
    this.mirror.onCommitted((c) => void this.enqueue(c.key, c.etag, false).catch((err: unknown) => this.logger.error({ key: c.key, err: errorMessage(err) }, 'could not queue delivery')));
    this.mirror.observeDownloads({
      starting: (object) => this.markPending(object.key, object.etag),
      notCommitted: (object, reason) => this.markNotCommitted(object.key, object.etag, reason),
    });
  }

  /**
   * A version on its way to the mirror is `pending` (one the mirror already committed, or is
   * delivering, keeps its status). Its commit makes it `synced`; see enqueue.
   */
  private async markPending(key: string, etag: string): Promise<void> {
    const fileId = this.trackedFileId(key, etag);
    if (!fileId) return;
    const existing = await this.store.ledgerGet(fileId);
    if (!awaitsCommit(existing)) return;
    await this.store.ledgerPut({ ...newLedgerEntry(fileId, key, this.clock.now(), existing), status: 'pending', lastError: undefined });
  }

  /** The pending version was not committed: `failed`, with why, until a later sync fetches it. */
  private async markNotCommitted(key: string, etag: string, reason: string): Promise<void> {
    const fileId = this.trackedFileId(key, etag);
    if (!fileId) return;
    const existing = await this.store.ledgerGet(fileId);
    if (existing?.status !== 'pending') return;
    await this.store.ledgerPut({ ...existing, status: 'failed', lastError: `not mirrored: ${reason}`, updatedAt: this.clock.now() });
  }

  /** The fileId of a version this service delivers; undefined for other keys and for versions without an ETag. */
  private trackedFileId(key: string, etag: string): string | undefined {
    return etag && this.matches(key) ? fileIdOf(this.config.s3.bucket, key, etag) : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    // Files committed, or being delivered, when the process last stopped.
    const unfinished = await this.store.ledgerByStatus(['synced', 'delivering'], RESUME_PAGE);
    for (const entry of unfinished) this.schedule(entry, false);
    if (unfinished.length > 0) this.logger.log({ files: unfinished.length }, 'resuming deliveries');
    void this.reconcile().catch((err: unknown) => this.logger.error({ err: errorMessage(err) }, 'delivery reconciliation failed'));
  }

  /**
   * A crash between a file's commit and its ledger entry would leave it undelivered: files committed
   * since delivery was first enabled that have no ledger entry are queued at start-up.
   */
  private async reconcile(): Promise<void> {
    let queued = 0;
    for (const entry of this.manifest.committedSince(this.deliverySince)) {
      if (this.shutdown.signal.aborted) return;
      if (!this.matches(entry.key) || entry.verifiedBy === 'adopted') continue;
      const recorded = await this.store.ledgerGet(fileIdOf(this.config.s3.bucket, entry.key, entry.etag));
      if (recorded && recorded.status !== 'pending') continue;
      await this.enqueue(entry.key, entry.etag, false);
      queued++;
    }
    if (queued > 0) this.logger.warn({ files: queued }, 'queued committed files that had no delivery record');
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.shutdown.abort(new Error('service is shutting down'));
    this.files.clear();
    await this.files.onIdle();
  }

  /** Queues the delivery of a committed file version (no-op for keys the patterns exclude). */
  async enqueue(key: string, etag: string, reprocess: boolean): Promise<LedgerEntry | undefined> {
    if (!this.enabled || !this.matches(key)) return undefined;
    const fileId = fileIdOf(this.config.s3.bucket, key, etag);
    const existing = await this.store.ledgerGet(fileId);
    if (existing && !reprocess && !awaitsCommit(existing)) {
      if (!this.active.has(fileId) && (existing.status === 'synced' || existing.status === 'delivering')) this.schedule(existing, false);
      return existing;
    }
    const entry: LedgerEntry = { ...newLedgerEntry(fileId, key, this.clock.now(), existing), status: 'synced' };
    await this.store.ledgerPut(entry);
    this.schedule(entry, reprocess);
    return entry;
  }

  /** Delivers the current version of `key` again from its first batch. */
  async reprocess(key: string): Promise<LedgerEntry> {
    if (!this.enabled) throw new NotFoundError('delivery is not configured (CALL_DETAILS_URL)');
    const committed = this.manifest.committed(key);
    if (!committed) throw new NotFoundError(`${key} is not in the mirror`);
    const entry = await this.enqueue(key, committed.etag, true);
    if (!entry) throw new NotFoundError(`${key} does not match DELIVERY_PATTERNS`);
    return entry;
  }

  async status(fileId: string): Promise<LedgerEntry> {
    const entry = await this.store.ledgerGet(fileId);
    if (!entry) throw new NotFoundError(`no delivery recorded for ${fileId}`);
    return entry;
  }

  async statusOfKey(key: string): Promise<LedgerEntry> {
    const entry = await this.store.ledgerLatestForKey(key);
    if (!entry) throw new NotFoundError(`no delivery recorded for ${key}`);
    return entry;
  }

  async counts(): Promise<Partial<Record<LedgerStatus, number>>> {
    return this.store.ledgerCounts();
  }

  /** Sends the dead-lettered batches again, under their original Idempotency-Keys. */
  async redrive(): Promise<RedriveReport> {
    const letters = await this.deadLetters.pendingBatches();
    const done: string[] = [];
    let failed = 0;
    for (const letter of letters) {
      try {
        await this.sink.send(letter.payload, `${letter.fileId}#${letter.batchNo}`, this.shutdown.signal);
        done.push(letter.id);
      } catch (err) {
        failed++;
        this.logger.warn({ id: letter.id, err: errorMessage(err) }, 'redrive failed');
      }
    }
    await this.deadLetters.markRedriven(done);
    return { redriven: done.length, failed };
  }

  private schedule(entry: LedgerEntry, force: boolean): void {
    if (this.active.has(entry.fileId) && !force) return;
    this.active.add(entry.fileId);
    void this.files
      .add(() => this.deliver(entry.fileId, entry.key, force))
      .catch((err: unknown) => this.logger.error({ fileId: entry.fileId, err: errorMessage(err) }, 'delivery crashed'))
      .finally(() => this.active.delete(entry.fileId));
  }

  private async deliver(fileId: string, key: string, force: boolean): Promise<void> {
    const signal = this.shutdown.signal;
    if (signal.aborted) return;
    const claim = await this.store.claim(fileId, this.replicaId, this.clock.nowMs(), CLAIM_LEASE_MS, force);
    if (claim !== 'claimed') {
      this.logger.log({ fileId, claim }, claim === 'completed' ? 'already delivered within the idempotency window' : 'delivered by another replica');
      if (claim === 'completed') await this.update(fileId, { status: 'delivered' });
      return;
    }
    const renew = setInterval(() => void this.store.claim(fileId, this.replicaId, this.clock.nowMs(), CLAIM_LEASE_MS, false), CLAIM_LEASE_MS / 3);
    renew.unref();
    try {
      const entry = await this.update(fileId, { status: 'delivering', lastError: undefined }, (e) => ({ attempts: e.attempts + 1 }));
      const outcome = await this.deliverRecords(entry, signal);
      const now = this.clock.now();
      await this.update(fileId, { ...outcome, status: outcome.deadBatches > 0 ? 'dead' : 'delivered', deliveredAt: now });
      await this.store.completeClaim(fileId, this.replicaId, now.getTime() + this.config.delivery.idempotencyTtlMs);
      this.logger.log({ fileId, records: outcome.recordsSent, failed: outcome.recordsFailed }, 'file delivered');
    } catch (err) {
      // Stopped by the shutdown: the entry stays `delivering` and resumes at its checkpoint.
      if (signal.aborted) return;
      await this.update(fileId, { status: 'failed', lastError: errorMessage(err) });
      await this.store.releaseClaim(fileId, this.replicaId);
      this.logger.error({ fileId, err: errorMessage(err) }, 'delivery failed');
    } finally {
      clearInterval(renew);
    }
  }

  private async deliverRecords(
    start: LedgerEntry,
    signal: AbortSignal,
  ): Promise<Pick<LedgerEntry, 'recordsParsed' | 'recordsSent' | 'recordsFailed' | 'batchesAcked'> & { deadBatches: number }> {
    const { fileId, key } = start;
    const committed = this.manifest.committed(key);
    if (!committed || fileIdOf(this.config.s3.bucket, key, committed.etag) !== fileId) {
      throw new Error('superseded: the mirror holds another version of this key now');
    }
    const { absPath } = await this.mirror.resolveForRead(key);
    const resumeAt = start.batchesAcked;
    const progress = { recordsParsed: 0, recordsSent: start.recordsSent, recordsFailed: start.recordsFailed, batchesAcked: resumeAt };
    let deadBatches = 0;
    const acked = new Set<number>();
    // Only the batches in flight: memory stays flat however many batches a file has.
    const inflight = new Set<Promise<void>>();
    /** Why a batch stopped without an outcome (the shutdown): the file is then not finished. */
    let interrupted: unknown;
    const batcher = new Batcher(this.config.delivery.maxRecordsPerBatch, this.config.delivery.maxBatchBytes);
    let persisting = Promise.resolve();
    // Every acknowledgement moves the checkpoint: a restart resends only what was in flight. The
    // entry is this delivery's own while it holds the claim, so it is written without a re-read.
    const persist = (): void => {
      const entry: LedgerEntry = { ...start, ...progress, updatedAt: this.clock.now() };
      persisting = persisting.then(() => this.store.ledgerPut(entry));
    };

    const settle = (batch: Batch, sent: boolean): void => {
      if (sent) progress.recordsSent += batch.records.length;
      else progress.recordsFailed += batch.records.length;
      acked.add(batch.batchNo);
      while (acked.delete(progress.batchesAcked)) progress.batchesAcked++;
      persist();
    };

    const dispatch = async (batch: Batch): Promise<void> => {
      if (batch.batchNo < resumeAt) return; // acknowledged before the restart
      // Backpressure: the file is not read further while every request slot is taken.
      await this.requests.onSizeLessThan(1);
      signal.throwIfAborted();
      const body = batchBody(batch, this.clock.now().toISOString());
      const sending: Promise<void> = this.requests.add(async () => {
        try {
          await this.sink.send(body, `${fileId}#${batch.batchNo}`, signal);
          settle(batch, true);
        } catch (err) {
          if (signal.aborted) throw err;
          deadBatches++;
          await this.deadLetters.add({
            kind: 'batch', fileId, key, batchNo: batch.batchNo, firstLine: batch.firstLine, lastLine: batch.lastLine,
            reason: errorMessage(err), attempts: this.config.delivery.maxRetries + 1, payload: body,
          });
          settle(batch, false);
        }
      });
      inflight.add(sending);
      sending.then(
        () => inflight.delete(sending),
        (err: unknown) => {
          inflight.delete(sending);
          interrupted ??= err;
        },
      );
    };

    const deadRecord = async (line: number, reason: string, raw: string): Promise<void> => {
      progress.recordsFailed++;
      await this.deadLetters.add({ kind: 'record', fileId, key, line, reason, attempts: 1, payload: raw });
    };

    for await (const chunk of readRecords(createReadStream(absPath, { highWaterMark: 256 * 1024 }), formatOf(key))) {
      for (const parsed of chunk) {
        progress.recordsParsed++;
        // Lines before the checkpoint were handled (sent or dead-lettered) before the restart.
        const beforeCheckpoint = batcher.pendingBatchNo < resumeAt;
        if ('error' in parsed) {
          if (!beforeCheckpoint) await deadRecord(parsed.line, parsed.error, parsed.raw);
          continue;
        }
        if (!batcher.fits(Buffer.byteLength(parsed.json))) {
          if (!beforeCheckpoint) await deadRecord(parsed.line, `record larger than MAX_BATCH_BYTES (${this.config.delivery.maxBatchBytes})`, parsed.json.slice(0, 1024));
          continue;
        }
        const full = batcher.add(parsed.json, parsed.line);
        if (full) await dispatch(full);
      }
    }
    const last = batcher.flush();
    if (last) await dispatch(last);
    await Promise.allSettled([...inflight]);
    if (interrupted !== undefined) throw interrupted;
    await persisting;
    return { ...progress, deadBatches };
  }

  private async update(
    fileId: string,
    patch: Partial<LedgerEntry>,
    derive: (current: LedgerEntry) => Partial<LedgerEntry> = () => ({}),
  ): Promise<LedgerEntry> {
    const current = await this.store.ledgerGet(fileId);
    if (!current) throw new Error(`ledger entry ${fileId} vanished`);
    const next = { ...current, ...patch, ...derive(current), updatedAt: this.clock.now() };
    await this.store.ledgerPut(next);
    return next;
  }
}

/** A value kept in a small file under STATE_DIR: written the first time, read ever after. */
function persistentValue(stateDir: string, name: string, initial: () => string): string {
  const file = join(stateDir, name);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    mkdirSync(stateDir, { recursive: true });
    const value = initial();
    writeFileSync(file, value);
    return value;
  }
}
