import { Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { listsInKeyOrder } from '../aws/data-path';
import { ARCHIVED_ON_GET, isArchivedObjectError } from '../aws/s3-errors';
import { S3Repository } from '../aws/s3.repository';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { BadRequestError, ConflictError, errorMessage, NotFoundError, ShuttingDownError, TooManyRunsError } from '../common/errors';
import { scopedPrefix } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import type { RemoteObject } from '../mirror/file-version';
import { Metrics } from '../metrics/metrics.service';
import { MirrorService } from '../mirror/mirror.service';
import { ManifestEntry, ManifestStore } from '../state/manifest.store';
import { FilterPatternError, KeyFilter } from '../common/key-filter';
import { emptyCounts, RunCounts, RunItem, RunRecord, RunStore, RunTrigger } from '../state/state.ports';
import { ListingReconciler } from './listing-reconciler';
import { deleteGuard, planObject } from './sync-planner';
import { PRIORITY, WorkQueue } from './work.queue';
import { traced } from '../tracing/tracing';

export interface SyncRequest {
  prefix?: string;
  dryRun?: boolean;
  trigger: RunTrigger;
  allowDeleteAll?: boolean;
  /** The request's own rules (rclone globs), narrowing SYNC_INCLUDE / SYNC_EXCLUDE for this run. */
  include?: string[];
  exclude?: string[];
}

export interface RunProgress {
  runId: string;
  prefix: string;
  dryRun: boolean;
  startedAt: Date;
  counts: RunCounts;
  elapsedSeconds: number;
  bytesPerSecond: number;
  objectsPerSecond: number;
  /** Seconds left for the planned downloads at the current rate; null while unknown (still listing). */
  etaSeconds: number | null;
  listing: boolean;
}

interface ActiveRun {
  record: RunRecord;
  /** What this run may fetch and delete: the configured filter, narrowed by the request's. */
  filter: KeyFilter;
  abort: AbortController;
  listing: boolean;
  /** The manifest rows this run's listing has gone past, and what it listed. */
  reconciler: ListingReconciler;
  items: RunItem[];
  done: Promise<RunRecord>;
}

const ITEM_FLUSH = 500;
const PROGRESS_PERSIST_MS = 1000;

/**
 * Full syncs. A run lists the prefix page by page and decides each key as it arrives, so memory
 * does not grow with the bucket. Each page is compared with the manifest rows of its key range
 * (ListingReconciler); the files found gone are deleted only once the listing is complete, and only
 * if they were committed before the run began, so a key that an event brings in meanwhile stays.
 */
@Injectable()
export class SyncService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SyncService.name);
  private readonly active = new Map<string, ActiveRun>();

  constructor(
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
    private readonly mirror: MirrorService,
    private readonly work: WorkQueue,
    private readonly manifest: ManifestStore,
    private readonly runs: RunStore,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const stale = await this.runs.interruptStaleRuns('the process stopped while this run was going', this.clock.now());
    if (stale > 0) this.logger.warn({ runs: stale }, 'marked runs left by a previous process as interrupted');
    this.manifest.clearAllListings();
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    for (const run of this.active.values()) run.abort.abort(new Error('service is shutting down'));
    await Promise.allSettled([...this.active.values()].map((r) => r.done));
    this.logger.log({ signal }, 'stopped: running syncs aborted and recorded');
  }

  /** Starts a run and returns at once; `done` settles with the final record. */
  async start(request: SyncRequest): Promise<{ run: RunRecord; done: Promise<RunRecord> }> {
    const prefix = scopedPrefix(request.prefix, this.config.s3.prefix);
    const filter = this.config.sync.filter.narrowedBy(requestFilter(request));
    for (const other of this.active.values()) {
      if (prefix.startsWith(other.record.prefix) || other.record.prefix.startsWith(prefix)) {
        throw new ConflictError(`a sync of "${other.record.prefix}" is already running`, { runId: other.record.id });
      }
    }
    // Each run has its own listing and download queue: disjoint prefixes must not add up without end.
    const { maxConcurrentRuns } = this.config.sync;
    if (this.active.size >= maxConcurrentRuns) {
      throw new TooManyRunsError(
        maxConcurrentRuns,
        [...this.active.values()].map((r) => r.record.id),
      );
    }
    const record: RunRecord = {
      id: randomUUID(),
      prefix,
      trigger: request.trigger,
      dryRun: request.dryRun ?? false,
      status: 'running',
      startedAt: this.clock.now(),
      counts: emptyCounts(),
    };
    const reconciler = new ListingReconciler(
      this.manifest,
      { id: record.id, prefix, sinceMs: record.startedAt.getTime() },
      {
        ordered: listsInKeyOrder(this.config.s3.bucket),
        onDisorder: (detail) =>
          this.logger.warn(
            { runId: record.id, detail },
            'the endpoint lists keys out of key order: this run stages its listing to find deletions',
          ),
      },
    );
    const run: ActiveRun = {
      record,
      filter,
      abort: new AbortController(),
      listing: true,
      reconciler,
      items: [],
      done: Promise.resolve(record),
    };
    // Every download in flight listens to the run's signal.
    setMaxListeners(this.config.sync.concurrency * 2 + 16, run.abort.signal);
    // Registered before the first await so that a concurrent request sees it.
    this.active.set(record.id, run);
    try {
      await this.runs.createRun(record);
    } catch (err) {
      this.active.delete(record.id);
      throw err;
    }
    run.done = this.execute(run, request.allowDeleteAll ?? false).finally(() => this.active.delete(record.id));
    return { run: { ...record, counts: { ...record.counts } }, done: run.done };
  }

  progress(): RunProgress[] {
    return [...this.active.values()].map((run) => {
      const { record } = run;
      const elapsed = Math.max(0.001, (this.clock.nowMs() - record.startedAt.getTime()) / 1000);
      const c = record.counts;
      const bytesPerSecond = c.bytesDownloaded / elapsed;
      const remaining = c.bytesToDownload - c.bytesDownloaded;
      return {
        runId: record.id,
        prefix: record.prefix,
        dryRun: record.dryRun,
        startedAt: record.startedAt,
        counts: { ...c },
        elapsedSeconds: elapsed,
        bytesPerSecond,
        objectsPerSecond: (c.downloaded + c.skipped + c.deleted) / elapsed,
        etaSeconds: run.listing || bytesPerSecond === 0 ? null : remaining / bytesPerSecond,
        listing: run.listing,
      };
    });
  }

  /** A run with its first `detailsLimit` items; NotFoundError when unknown. */
  async report(id: string, detailsLimit: number): Promise<{ run: RunRecord; items: RunItem[]; truncated: boolean }> {
    const run = await this.getRun(id);
    if (!run) throw new NotFoundError(`no sync run with id ${id}`);
    const items = await this.runs.getRunItems(id, 0, detailsLimit + 1);
    return { run, items: items.slice(0, detailsLimit), truncated: items.length > detailsLimit };
  }

  async items(id: string, offset: number, limit: number): Promise<RunItem[]> {
    if (!(await this.getRun(id))) throw new NotFoundError(`no sync run with id ${id}`);
    return this.runs.getRunItems(id, offset, limit);
  }

  listRuns(limit: number): Promise<RunRecord[]> {
    return this.runs.listRuns(limit);
  }

  async stats(): Promise<{
    totals: { objects: number; bytes: number; runs: number; failedRuns: number };
    lastRun: RunRecord | null;
    running: RunProgress[];
  }> {
    const files = this.manifest.totals();
    const runs = await this.runs.runTotals();
    const lastFinished = (await this.runs.listRuns(20)).find((r) => r.status !== 'running') ?? null;
    return { totals: { objects: files.files, bytes: files.bytes, ...runs }, lastRun: lastFinished, running: this.progress() };
  }

  /** The running state of a run when it is in this process, else what the store has. */
  async getRun(id: string): Promise<RunRecord | undefined> {
    const live = this.active.get(id);
    return live ? { ...live.record, counts: { ...live.record.counts } } : this.runs.getRun(id);
  }

  private execute(run: ActiveRun, allowDeleteAll: boolean): Promise<RunRecord> {
    const { record } = run;
    return traced('sync.run', { 'sync.run_id': record.id, 'sync.prefix': record.prefix, 'sync.trigger': record.trigger }, async (span) => {
      const finished = await this.executeRun(run, allowDeleteAll);
      span.setAttributes({
        'sync.status': finished.status,
        'sync.downloaded': finished.counts.downloaded,
        'sync.failed': finished.counts.failed,
      });
      return finished;
    });
  }

  private async executeRun(run: ActiveRun, allowDeleteAll: boolean): Promise<RunRecord> {
    const { record } = run;
    const log = { runId: record.id, prefix: record.prefix, dryRun: record.dryRun };
    this.logger.log({ ...log, trigger: record.trigger, ...(run.filter.isEmpty ? {} : { filter: run.filter.describe() }) }, 'sync started');
    const persist = setInterval(
      () => detach(this.persistProgress(run), this.logger, 'could not persist run progress'),
      PROGRESS_PERSIST_MS,
    );
    persist.unref();
    try {
      await this.listAndDownload(run);
      run.listing = false;
      const blocked = this.config.sync.deleteRemoved ? await this.deleteRemoved(run, allowDeleteAll) : undefined;
      const c = record.counts;
      record.status = blocked ? 'failed' : c.failed + c.refused > 0 ? 'completed_with_errors' : 'completed';
      record.message = blocked ?? this.summary(record);
    } catch (err) {
      record.status = run.abort.signal.aborted ? 'aborted' : 'failed';
      record.message = run.abort.signal.aborted ? errorMessage(run.abort.signal.reason) : `sync failed: ${errorMessage(err)}`;
      this.logger.error({ ...log, err }, 'sync failed');
    } finally {
      clearInterval(persist);
      run.listing = false;
      record.finishedAt = this.clock.now();
      this.countRun(record);
      this.manifest.clearListing(record.id);
      await this.flushItems(run);
      await this.runs.updateRun(record.id, {
        status: record.status,
        message: record.message,
        finishedAt: record.finishedAt,
        counts: record.counts,
      });
      await this.runs
        .pruneRuns(this.config.sync.runHistory)
        .catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, 'could not prune the run history'));
    }
    this.logger.log({ ...log, status: record.status, counts: record.counts }, record.message ?? 'sync finished');
    return { ...record, counts: { ...record.counts } };
  }

  private async listAndDownload(run: ActiveRun): Promise<void> {
    const { record, abort } = run;
    const { concurrency, maxFileBytes, skipExisting } = this.config.sync;
    const c = record.counts;
    // This run's downloads only; the work queue holds those of every other change too.
    const downloads = new Set<Promise<void>>();
    for await (const page of this.s3.list(record.prefix, abort.signal)) {
      abort.signal.throwIfAborted();
      // Read for the whole page at once; after the loop has waited (below), an event may have
      // committed one of its keys, so the rest of the page is read key by key.
      let pageRead: Map<string, { etag: string; size: number }> | undefined = await run.reconciler.page(page.map((o) => o.key));
      for (const object of page) {
        c.listed++;
        const admission = this.mirror.admit(object.key, { filter: run.filter });
        if (admission.kind === 'ignored') continue;
        if (admission.kind === 'excluded') {
          c.excluded++;
          continue;
        }
        if (admission.kind === 'refused') {
          c.refused++;
          this.addItem(run, { operation: 'refuse', key: object.key, status: 'failed', message: admission.reason });
          continue;
        }
        const committed = pageRead ? pageRead.get(object.key) : this.manifest.committed(object.key);
        const decision = planObject(object, committed, this.mirror.localFile(admission.mapping), {
          maxFileBytes,
          skipExisting,
        });
        switch (decision.action) {
          case 'skip':
            c.skipped++;
            break;
          case 'too-large':
            c.skipped++;
            this.addItem(run, { operation: 'skip', key: object.key, status: 'skipped', message: decision.reason });
            break;
          case 'archived':
            c.archived++;
            this.addItem(run, { operation: 'skip', key: object.key, status: 'skipped', message: decision.reason });
            break;
          case 'adopt':
            c.skipped++;
            if (!record.dryRun) this.mirror.adopt(object);
            this.addItem(run, { operation: 'skip', key: object.key, status: 'skipped', message: `adopted: ${decision.reason}` });
            break;
          case 'download':
            c.toDownload++;
            c.bytesToDownload += object.size;
            if (record.dryRun) {
              this.addItem(run, { operation: 'download', key: object.key, status: 'planned', message: decision.reason });
            } else {
              const download = this.download(run, object, decision.reason);
              downloads.add(download);
              // Never rejects: a failed download is counted and reported by download() itself.
              void download.finally(() => downloads.delete(download));
              // Backpressure, per object: a task that waits long outlives two young-generation
              // collections and is copied to the old one, which then fills with garbage.
              if (this.work.waiting >= concurrency * 2) {
                await this.work.waitForRoom(concurrency);
                pageRead = undefined;
              }
            }
            break;
        }
      }
      await this.flushItems(run, ITEM_FLUSH);
    }
    await run.reconciler.finish();
    run.listing = false;
    await Promise.all(downloads);
    abort.signal.throwIfAborted();
  }

  private async download(run: ActiveRun, object: RemoteObject, reason: string): Promise<void> {
    const c = run.record.counts;
    try {
      const { result: committed, seconds } = await this.work.run(
        object.key,
        () => this.timed(() => this.mirror.download(object, { signal: run.abort.signal, onBytes: (n) => (c.bytesDownloaded += n) })),
        PRIORITY.sync,
      );
      c.downloaded++;
      this.addItem(run, {
        operation: 'download',
        key: object.key,
        status: 'success',
        message: `Downloaded successfully in ${seconds} seconds; ${reason}; ${committed.bytes} bytes, verified by ${committed.verifiedBy}`,
      });
    } catch (err) {
      if (run.abort.signal.aborted || err instanceof ShuttingDownError) return;
      // An Intelligent-Tiering archive tier is not in the listing's storage class: S3's answer tells.
      if (isArchivedObjectError(err)) {
        c.archived++;
        this.addItem(run, { operation: 'skip', key: object.key, status: 'skipped', message: ARCHIVED_ON_GET });
        return;
      }
      c.failed++;
      this.addItem(run, { operation: 'download', key: object.key, status: 'failed', message: errorMessage(err) });
      this.logger.warn({ runId: run.record.id, key: object.key, err: errorMessage(err) }, 'download failed');
    }
  }

  /** Deletes local files whose objects are gone, unless the guard says the listing cannot be trusted. */
  private async deleteRemoved(run: ActiveRun, allowDeleteAll: boolean): Promise<string | undefined> {
    const { record } = run;
    const c = record.counts;
    const toDelete = run.filter.isEmpty ? run.reconciler.count() : count(this.deletionCandidates(run));
    if (toDelete === 0) return undefined;
    const blocked = deleteGuard({
      toDelete,
      // Under a filter, the guard weighs the deletions against the files the filter covers.
      mirrored: run.filter.isEmpty ? this.manifest.count(record.prefix) : count(this.coveredEntries(run)),
      maxDelete: this.config.sync.maxDelete,
      allowDeleteAll,
    });
    c.toDelete = toDelete;
    if (blocked) {
      this.logger.warn({ runId: record.id, toDelete }, blocked);
      return blocked;
    }
    for (const entry of this.deletionCandidates(run)) {
      run.abort.signal.throwIfAborted();
      if (record.dryRun) {
        this.addItem(run, { operation: 'delete', key: entry.key, status: 'planned', message: 'object no longer in the bucket' });
        continue;
      }
      try {
        const { seconds } = await this.work.run(entry.key, () => this.timed(() => this.mirror.remove(entry.key)), PRIORITY.sync);
        c.deleted++;
        this.addItem(run, {
          operation: 'delete',
          key: entry.key,
          status: 'success',
          message: `Deleted successfully in ${seconds} seconds; object no longer in the bucket`,
        });
      } catch (err) {
        c.failed++;
        this.addItem(run, { operation: 'delete', key: entry.key, status: 'failed', message: errorMessage(err) });
      }
      await this.flushItems(run, ITEM_FLUSH);
    }
    return undefined;
  }

  /** Mirrored files whose objects the listing no longer has; what the run's filter leaves out is never one. */
  private *deletionCandidates(run: ActiveRun): Generator<ManifestEntry> {
    for (const entry of run.reconciler.gone()) {
      if (run.filter.passes(entry.key)) yield entry;
    }
  }

  /** Mirrored files under the run's prefix that its filter covers. */
  private *coveredEntries(run: ActiveRun): Generator<ManifestEntry> {
    for (const entry of this.manifest.entries(run.record.prefix)) if (run.filter.passes(entry.key)) yield entry;
  }

  private countRun(record: RunRecord): void {
    const m = this.metrics;
    m.syncRuns.inc({ status: record.status });
    m.syncDuration.observe((record.finishedAt!.getTime() - record.startedAt.getTime()) / 1000);
    if (record.dryRun) return;
    const c = record.counts;
    const results = { downloaded: c.downloaded, skipped: c.skipped, deleted: c.deleted, failed: c.failed, refused: c.refused };
    for (const [result, n] of Object.entries(results)) if (n > 0) m.syncObjects.inc({ result }, n);
    if (c.bytesDownloaded > 0) m.syncBytes.inc(c.bytesDownloaded);
  }

  /** Runs `work` and says how long it took, in the seconds-with-two-decimals form of the report. */
  private async timed<T>(work: () => Promise<T>): Promise<{ result: T; seconds: string }> {
    const started = this.clock.nowMs();
    const result = await work();
    return { result, seconds: ((this.clock.nowMs() - started) / 1000).toFixed(2) };
  }

  private summary(record: RunRecord): string {
    const c = record.counts;
    const verb = record.dryRun ? 'would download' : 'downloaded';
    const deleted = record.dryRun ? `would delete ${c.toDelete}` : `deleted ${c.deleted}`;
    const downloaded = record.dryRun ? c.toDownload : c.downloaded;
    const excluded = c.excluded > 0 ? `, excluded ${c.excluded}` : '';
    const archived = c.archived > 0 ? `, archived ${c.archived}` : '';
    return `listed ${c.listed}, ${verb} ${downloaded}, ${deleted}, unchanged ${c.skipped}, failed ${c.failed}, refused ${c.refused}${excluded}${archived}`;
  }

  private addItem(run: ActiveRun, item: RunItem): void {
    run.items.push(item);
  }

  private async flushItems(run: ActiveRun, threshold = 0): Promise<void> {
    if (run.items.length === 0 || run.items.length < threshold) return;
    const items = run.items.splice(0);
    await this.runs.appendRunItems(run.record.id, items);
  }

  private async persistProgress(run: ActiveRun): Promise<void> {
    try {
      await this.runs.updateRun(run.record.id, { counts: run.record.counts });
    } catch (err) {
      this.logger.warn({ runId: run.record.id, err: errorMessage(err) }, 'could not persist run progress');
    }
  }
}

function requestFilter(request: SyncRequest): KeyFilter {
  try {
    return KeyFilter.of(request.include ?? [], request.exclude ?? []);
  } catch (err) {
    if (err instanceof FilterPatternError) {
      throw new BadRequestError(err.message, { parameter: request.include?.includes(err.pattern) ? 'include' : 'exclude' });
    }
    throw err;
  }
}

function count(entries: Iterable<unknown>): number {
  let n = 0;
  for (const _ of entries) n++;
  return n;
}
