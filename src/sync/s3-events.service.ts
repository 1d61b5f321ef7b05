import { Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ARCHIVED_ON_GET, isArchivedObjectError, S3RequestError } from '../aws/s3-errors';
import { fullJitterDelayMs } from '../common/backoff';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { ConflictError, DeleteHeldError, errorMessage, ShuttingDownError, UnsafeKeyError } from '../common/errors';
import { S3Repository } from '../aws/s3.repository';
import { EventDeleteBudget } from './event-delete-budget';
import { AppConfig } from '../config/app-config';
import { counterValue, histogramQuantile, Metrics } from '../metrics/metrics.service';
import { MirrorService } from '../mirror/mirror.service';
import type { FileMapping } from '../mirror/local-dirs.service';
import { ManifestStore } from '../state/manifest.store';
import { EventInbox, EventSource, InboxEntry } from '../state/state.ports';
import { ChangeOp, compareSequencers, ObjectChange, parseNotificationText } from './s3-event';
import { planObject } from './sync-planner';
import { PRIORITY, WorkQueue } from './work.queue';
import { traced } from '../tracing/tracing';

export interface RecordOutcome {
  index: number;
  status: 'accepted' | 'ignored' | 'rejected';
  key?: string;
  op?: ChangeOp;
  reason?: string;
}

export interface EventsReport {
  accepted: number;
  ignored: number;
  rejected: number;
  records: RecordOutcome[];
}

/** What applying one change did to the mirror. */
export const APPLY_RESULTS = ['downloaded', 'deleted', 'unchanged', 'stale', 'gone', 'skipped', 'kept'] as const;
export type ApplyResult = (typeof APPLY_RESULTS)[number];

export interface EventStats {
  accepted: number;
  ignored: number;
  rejected: number;
  applied: Record<ApplyResult, number>;
  failed: number;
  inFlight: number;
  /** Accepted and not yet applied (the durable inbox). */
  pending: number;
  /** Failed after the download's retries; tried again after a backoff. */
  parked: number;
  /** Given up (after EVENT_MAX_ATTEMPTS, or at once for what no retry mends) until an operator retries them. */
  dead: number;
  /** Milliseconds from acceptance to applied (estimated from the latency histogram's buckets). */
  latencyMs: { p50: number | null; p99: number | null; samples: number };
}

const RECOVERY_PAGE = 500;

/**
 * What no retry mends: another key holds the path, the key cannot be a local path, or a delete is
 * held beyond the delete budget (it waits for an operator, not for a timer).
 */
function isPermanent(err: unknown): boolean {
  return err instanceof ConflictError || err instanceof UnsafeKeyError || err instanceof DeleteHeldError;
}

/**
 * Real-time sync: turns S3 notifications into mirror changes. Webhook events are recorded in the
 * durable inbox before they are acknowledged and applied from there (so a crash resumes them);
 * queue events are applied directly and acknowledged to SQS only once committed. Either way each
 * change goes through `apply`: in its key's turn in the WorkQueue, a change whose sequencer is not
 * newer than the last one applied to its key is dropped (so duplicates and reordering are
 * harmless), and the rest is decided by the same planner as a full sync.
 */
@Injectable()
export class S3EventsService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(S3EventsService.name);
  /** Changes being applied (or waiting in the work queue); `idle` settles when none are. */
  private inFlight = 0;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle?: () => void;
  /** Inbox entries already handed to the queue (start-up recovery must not schedule them twice). */
  private readonly scheduled = new Set<string>();
  private stopping = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly shutdown = new AbortController();
  private readonly deleteBudget: EventDeleteBudget;

  constructor(
    private readonly config: AppConfig,
    private readonly work: WorkQueue,
    private readonly mirror: MirrorService,
    private readonly manifest: ManifestStore,
    private readonly inbox: EventInbox,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly s3: S3Repository,
  ) {
    this.deleteBudget = new EventDeleteBudget(config.sync.maxDelete, config.events.deleteWindowMs);
    // Every change in flight (up to SYNC_CONCURRENCY and its HEADs) listens to the one shutdown signal.
    setMaxListeners(0, this.shutdown.signal);
  }

  async onApplicationBootstrap(): Promise<void> {
    // A restart is worth a retry of every parked event at once (what was wrong may be what it mended).
    const retried = await this.inbox.inboxRetryFailed();
    if (retried > 0) this.logger.warn({ events: retried }, 'retrying events that failed before the last stop');
    detach(this.recover(), this.logger, 'inbox recovery failed');
    // Due parked events are looked for at half the base delay: the first retry comes within 1.5 x base.
    const everyMs = Math.min(30_000, Math.max(500, this.config.events.retry.baseMs / 2));
    this.retryTimer = setInterval(
      () => detach(this.retryParked({ dueBy: this.clock.now() }), this.logger, 'parked events retry failed'),
      everyMs,
    );
    this.retryTimer.unref();
  }

  /**
   * Puts parked events back in the queue: those due by `dueBy` (the schedule), or every parked and
   * given-up one (an operator's request); returns how many.
   */
  async retryParked(options: { dueBy?: Date; includeDead?: boolean }): Promise<number> {
    if (this.stopping) return 0;
    const retried = await this.inbox.inboxRetryFailed(options);
    if (retried > 0) {
      this.logger.log({ events: retried, dueBy: options.dueBy, includeDead: options.includeDead ?? false }, 'retrying parked events');
      await this.recover();
    }
    return retried;
  }

  /** Parked and given-up events, oldest first, for an operator. */
  parkedEvents(status: 'failed' | 'dead', limit: number, afterId?: string): Promise<InboxEntry[]> {
    return this.inbox.inboxList(status, limit, afterId);
  }

  async beforeApplicationShutdown(): Promise<void> {
    // What has not finished stays in the inbox (or on the queue) and is resumed at the next start.
    clearInterval(this.retryTimer);
    this.stopping = true;
    this.shutdown.abort(new ShuttingDownError());
    await this.idle;
  }

  private track<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight++ === 0) this.idle = new Promise((resolve) => (this.settleIdle = resolve));
    return work().finally(() => {
      if (--this.inFlight === 0) this.settleIdle?.();
    });
  }

  /**
   * Webhook path: sorts the records, stores the accepted changes durably, schedules them and
   * returns at once. Throws EventShapeError (400) when the body is not a notification at all.
   */
  async accept(body: string, source: EventSource): Promise<EventsReport> {
    const { report, changes } = this.triage(body, source);
    if (changes.length > 0) {
      const receivedAt = this.clock.now();
      const entries = changes.map((change) => ({ id: randomUUID(), source, change, receivedAt }));
      await this.inbox.inboxAdd(entries);
      for (const e of entries) this.schedule({ ...e, attempts: 0, status: 'pending' });
    }
    return report;
  }

  /**
   * Queue path: applies every accepted change now and resolves once all are committed; rejects with
   * the first failure (the message then stays on the queue). Throws EventShapeError for a body that
   * is not a notification (a poison message).
   */
  async applyNow(body: string): Promise<EventsReport> {
    const { report, changes } = this.triage(body, 'sqs');
    const started = this.clock.nowMs();
    const results = await Promise.allSettled(changes.map((c) => this.applyCounted(c, 'sqs', started)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    return report;
  }

  /** The counters of GET /api/v1/stats: the metrics' own (one source for every number). */
  async stats(): Promise<EventStats> {
    const m = this.metrics;
    const [inbox, latency50, latency99] = await Promise.all([
      this.inbox.inboxCounts(),
      histogramQuantile(m.eventLatency, 0.5),
      histogramQuantile(m.eventLatency, 0.99),
    ]);
    const applied = {} as Record<ApplyResult, number>;
    for (const result of APPLY_RESULTS) applied[result] = await counterValue(m.eventsApplied, { result });
    const ms = (s: number | null): number | null => (s === null ? null : Math.round(s * 1000));
    return {
      accepted: await counterValue(m.events, { outcome: 'accepted' }),
      ignored: await counterValue(m.events, { outcome: 'ignored' }),
      rejected: await counterValue(m.events, { outcome: 'rejected' }),
      applied,
      failed: await counterValue(m.eventsApplied, { result: 'failed' }),
      inFlight: this.inFlight,
      pending: inbox.pending,
      parked: inbox.failed,
      dead: inbox.dead,
      latencyMs: { p50: ms(latency50.value), p99: ms(latency99.value), samples: latency50.count },
    };
  }

  /** Applies one change to the mirror in its key's turn, ordered by sequencer. */
  apply(change: ObjectChange): Promise<ApplyResult> {
    return this.work.run(
      change.key,
      async () => {
        const last = this.manifest.lastSequencer(change.key);
        // An event without a sequencer is older than any with one: it cannot undo a newer change.
        if (last && (!change.sequencer || compareSequencers(change.sequencer, last) <= 0)) return 'stale';
        const result = await this.applyToMirror(change);
        // A delete S3 disproved changed nothing: its sequencer must not make later events stale.
        if (change.sequencer && result !== 'kept') this.manifest.recordSequencer(change.key, change.sequencer, this.clock.now());
        return result;
      },
      PRIORITY.event,
    );
  }

  private async applyToMirror(change: ObjectChange): Promise<ApplyResult> {
    if (change.op === 'delete' && !this.config.sync.deleteRemoved) return 'skipped';
    const admission = this.mirror.admit(change.key);
    // A parked change admitted under an earlier configuration: what the filter leaves out now stays untouched.
    if (admission.kind === 'excluded' || admission.kind === 'ignored') return 'skipped';
    if (admission.kind === 'refused') throw new UnsafeKeyError(change.key, admission.reason);
    if (change.op === 'delete') return this.applyDelete(change, admission.mapping);
    // A notification names the version it announces. One without its size or ETag (some S3-compatible
    // stores send none) is completed by a HEAD: the size limit, the unchanged check and the length of
    // a chunked answer all need them.
    let remote = {
      key: change.key,
      etag: change.etag ?? '',
      size: change.size ?? 0,
      lastModified: new Date(change.eventTime ?? this.clock.nowMs()),
    };
    if (change.size === undefined || change.etag === undefined) {
      const head = await this.s3.headObject(change.key, undefined, this.shutdown.signal);
      if (!head) return 'gone';
      remote = { ...remote, etag: head.etag, size: head.size, lastModified: head.lastModified };
    }
    const decision = planObject(remote, this.manifest.committed(change.key), this.mirror.localFile(admission.mapping), {
      maxFileBytes: this.config.sync.maxFileBytes,
      // Adoption compares with the object's LastModified, which a notification does not carry.
      skipExisting: false,
    });
    if (decision.action === 'skip') return 'unchanged';
    if (decision.action === 'too-large' || decision.action === 'archived') {
      this.logger.warn({ key: change.key, size: change.size, reason: decision.reason }, 'object not mirrored');
      return 'skipped';
    }
    try {
      await this.mirror.download(remote, { sequencer: change.sequencer, signal: this.shutdown.signal });
      return 'downloaded';
    } catch (err) {
      // Deleted again since the event: its ObjectRemoved event brings the mirror up to date.
      if (err instanceof S3RequestError && err.statusCode === 404) return 'gone';
      // Written straight to an archive class: its ObjectRestore:Completed event brings it once restored.
      if (isArchivedObjectError(err)) {
        this.logger.warn({ key: change.key, reason: errorMessage(err) }, ARCHIVED_ON_GET);
        return 'skipped';
      }
      throw err;
    }
  }

  /**
   * A notification is a claim, not a proof: the file goes only once S3 says the object is gone (a
   * HEAD answering 404: a delete marker, an expiration, a real delete), and only within the budget.
   */
  private async applyDelete(change: ObjectChange, mapping: FileMapping): Promise<ApplyResult> {
    if (!this.manifest.committed(change.key) && !this.mirror.localFile(mapping)) return 'unchanged';
    const head = await this.s3.headObject(change.key, undefined, this.shutdown.signal);
    if (head) {
      this.logger.warn(
        { key: change.key, etag: head.etag, sequencer: change.sequencer },
        'delete event for an object S3 still has: file kept',
      );
      return 'kept';
    }
    const nowMs = this.clock.nowMs();
    const held = this.deleteBudget.take(nowMs, () => this.manifest.count(''));
    if (held) {
      this.metrics.eventDeletesHeld.inc();
      throw new DeleteHeldError(change.key, held);
    }
    try {
      await this.mirror.remove(change.key);
    } catch (err) {
      this.deleteBudget.giveBack(nowMs);
      throw err;
    }
    return 'deleted';
  }

  private triage(body: string, source: EventSource): { report: EventsReport; changes: ObjectChange[] } {
    const records: RecordOutcome[] = [];
    const changes: ObjectChange[] = [];
    parseNotificationText(body).forEach((result, index) => {
      if (result.status !== 'change') {
        records.push({ index, status: result.status, key: result.key, reason: result.reason });
        return;
      }
      const { change } = result;
      const outcome = { index, key: change.key, op: change.op };
      const admission = this.mirror.admit(change.key, { eventBucket: change.bucket });
      if (admission.kind === 'ignored' || admission.kind === 'excluded') {
        records.push({ ...outcome, status: 'ignored', reason: admission.reason });
        return;
      }
      if (admission.kind === 'refused') {
        records.push({ ...outcome, status: 'rejected', reason: new UnsafeKeyError(change.key, admission.reason).message });
        return;
      }
      records.push({ ...outcome, status: 'accepted' });
      changes.push(change);
    });
    const count = (status: RecordOutcome['status']): number => records.filter((r) => r.status === status).length;
    const report = { accepted: count('accepted'), ignored: count('ignored'), rejected: count('rejected'), records };
    for (const outcome of ['accepted', 'ignored', 'rejected'] as const) {
      if (report[outcome] > 0) this.metrics.events.inc({ source, outcome }, report[outcome]);
    }
    return { report, changes };
  }

  private schedule(entry: InboxEntry): void {
    if (this.stopping || this.scheduled.has(entry.id)) return;
    this.scheduled.add(entry.id);
    detach(
      this.process(entry).finally(() => this.scheduled.delete(entry.id)),
      this.logger,
      'inbox entry could not be processed',
      { id: entry.id },
    );
  }

  private async process(entry: InboxEntry): Promise<void> {
    try {
      await this.applyCounted(entry.change, entry.source, entry.receivedAt.getTime());
      // The manifest row must be on disk before the inbox forgets the event.
      this.manifest.flush();
      await this.inbox.inboxRemove([entry.id]);
    } catch (err) {
      // Interrupted by the shutdown: not a failure, the entry stays pending for the next start.
      if (this.stopping || err instanceof ShuttingDownError) return;
      const attempt = entry.attempts + 1;
      const { baseMs, capMs, maxAttempts } = this.config.events.retry;
      const retryAt =
        isPermanent(err) || attempt >= maxAttempts ? undefined : new Date(this.clock.nowMs() + fullJitterDelayMs(attempt, baseMs, capMs));
      await this.inbox.inboxRecordFailure(entry.id, errorMessage(err), retryAt);
      if (!retryAt) this.logger.error({ id: entry.id, key: entry.change.key, attempts: attempt, err: errorMessage(err) }, 'event given up');
    }
  }

  private async applyCounted(change: ObjectChange, source: EventSource, acceptedAtMs: number): Promise<ApplyResult> {
    try {
      const attributes = { 's3.key': change.key, 'event.op': change.op, 'event.source': source };
      const result = await this.track(() =>
        traced('event.apply', attributes, async (span) => {
          const applied = await this.apply(change);
          span.setAttribute('event.result', applied);
          return applied;
        }),
      );
      this.metrics.eventsApplied.inc({ source, result });
      if (result === 'downloaded' || result === 'deleted') {
        this.metrics.eventLatency.observe({ source }, (this.clock.nowMs() - acceptedAtMs) / 1000);
      }
      this.logger.debug({ key: change.key, op: change.op, sequencer: change.sequencer, result }, 'event applied');
      return result;
    } catch (err) {
      if (err instanceof ShuttingDownError) throw err;
      this.metrics.eventsApplied.inc({ source, result: 'failed' });
      this.logger.error(
        { key: change.key, op: change.op, err: errorMessage(err), permanent: isPermanent(err) },
        'event could not be applied',
      );
      throw err;
    }
  }

  /** Schedules what the inbox holds from before this start, a page at a time. */
  private async recover(): Promise<void> {
    let after: string | undefined;
    let total = 0;
    for (;;) {
      const page = await this.inbox.inboxList('pending', RECOVERY_PAGE, after);
      if (page.length === 0 || this.stopping) break;
      for (const entry of page) this.schedule(entry);
      total += page.length;
      after = page[page.length - 1].id;
      await this.work.waitForRoom(RECOVERY_PAGE);
    }
    if (total > 0) this.logger.log({ events: total }, 'resumed events accepted before the last stop');
  }
}
