import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import picomatch from 'picomatch';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { errorMessage, ShuttingDownError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import type { FileCommitted } from '../mirror/file-version';
import { BundleCounts, BundleRecord, BundleStore } from '../state/state.ports';
import { BundleArchive } from './bundle.archive';
import { BundleBuilder, Spooled } from './bundle.builder';
import { BundlePoster } from './bundle.poster';
import { retryDelayMs, sealingDecision } from './bundle-policy';

const PENDING_PAGE = 10_000;

/**
 * Bundles (the data aggregator), the scheduler: committed files that match BUNDLE_PATTERNS wait
 * in the BundleStore (a file version is bundled once); a pass seals what bundle-policy.ts says is
 * due, then carries each unfinished bundle one step: sealed -> built (BundleBuilder) and archived
 * (BundleArchive) -> posted (BundlePoster). A failed post is retried later, with backoff, from the
 * same archived bundle.
 */
@Injectable()
export class BundleSink implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(BundleSink.name);
  private readonly matches: (key: string) => boolean;
  /** Built bundles of this process, until posted (after a restart the archived copy is read back). */
  private readonly spooled = new Map<string, Spooled>();
  private readonly shutdown = new AbortController();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly config: AppConfig,
    private readonly store: BundleStore,
    private readonly builder: BundleBuilder,
    private readonly archive: BundleArchive,
    private readonly poster: BundlePoster,
    private readonly clock: Clock,
  ) {
    const matchers = config.bundles.patterns.map((p) => picomatch(p, { dot: true }));
    this.matches = (key) => matchers.some((m) => m(key));
  }

  async stats(): Promise<{ enabled: boolean } & BundleCounts> {
    return { enabled: this.enabled, ...(await this.store.bundleCounts()) };
  }

  get enabled(): boolean {
    return Boolean(this.config.bundles.url && this.config.bundles.archiveBucket);
  }

  /** MirrorEvents: a committed version that matches BUNDLE_PATTERNS waits for its bundle. */
  fileCommitted(c: FileCommitted): void {
    if (!this.matches(c.key)) return;
    detach(
      this.store.bundleAddMember({ fileId: c.fileId, key: c.key, size: c.bytes, addedAt: this.clock.now() }).then(() => this.kick()),
      this.logger,
      'could not record the file for bundling',
      { fileId: c.fileId },
    );
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    // Age is the only limit that time alone can reach: look at least twice per BUNDLE_MAX_AGE.
    this.timer = setInterval(() => this.kick(), Math.max(100, Math.min(5000, this.config.bundles.maxAgeMs / 2)));
    this.timer.unref();
    this.kick();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.shutdown.abort(new ShuttingDownError());
    await this.idle();
  }

  /** Resolves once no pass runs and none is due (shutdown, and tests that step the scheduler). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Runs a pass now, or right after the one under way. */
  kick(): void {
    if (this.shutdown.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.logger.error({ err: errorMessage(err) }, 'bundle pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Seals what the limits allow, then carries every unfinished bundle one step further. */
  private async pass(): Promise<void> {
    while (await this.sealOne()) {
      if (this.shutdown.signal.aborted) return;
    }
    for (const bundle of await this.store.bundlesByStatus(['sealed', 'archived', 'failed'], 100)) {
      if (this.shutdown.signal.aborted) return;
      const { retryBaseMs, retryMaxMs } = this.config.delivery;
      if (
        bundle.status === 'failed' &&
        this.clock.nowMs() - bundle.updatedAt.getTime() < retryDelayMs(bundle.attempts, retryBaseMs, retryMaxMs)
      ) {
        continue;
      }
      await this.advance(bundle);
    }
  }

  /** Seals one bundle when bundle-policy.ts says so; false when nothing is due. */
  private async sealOne(): Promise<boolean> {
    const decision = sealingDecision(await this.store.bundlePendingMembers(PENDING_PAGE), this.config.bundles, this.clock.nowMs());
    if (!decision.seal) return false;
    const { members, bytes, reason } = decision;
    const now = this.clock.now();
    const bundle: BundleRecord = {
      id: bundleId(now),
      status: 'sealed',
      files: members.length,
      bytes,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    };
    const taken = await this.store.bundleSeal(
      bundle,
      members.map((m) => m.fileId),
    );
    if (taken > 0) this.logger.log({ bundleId: bundle.id, files: taken, bytes, reason }, 'bundle sealed');
    return taken > 0;
  }

  private async advance(bundle: BundleRecord): Promise<void> {
    try {
      if (bundle.status === 'sealed') bundle = await this.buildAndArchive(bundle);
      await this.poster.post(bundle, () => this.body(bundle), this.shutdown.signal);
      await this.store.bundlePut({
        ...bundle,
        status: 'posted',
        attempts: bundle.attempts + 1,
        lastError: undefined,
        updatedAt: this.clock.now(),
      });
      await this.builder.discard(this.spooled.get(bundle.id));
      this.spooled.delete(bundle.id);
      this.logger.log({ bundleId: bundle.id, files: bundle.files, archiveKey: bundle.archiveKey }, 'bundle posted');
    } catch (err) {
      if (this.shutdown.signal.aborted) return;
      const status = bundle.status === 'sealed' ? 'sealed' : 'failed';
      await this.store.bundlePut({
        ...bundle,
        status,
        attempts: bundle.attempts + 1,
        lastError: errorMessage(err),
        updatedAt: this.clock.now(),
      });
      this.logger.error(
        { bundleId: bundle.id, err: errorMessage(err) },
        status === 'sealed' ? 'bundle could not be archived' : 'bundle could not be posted; the archived copy will be sent again',
      );
    }
  }

  /** Builds the bundle into the spool and stores it in the archive bucket. */
  private async buildAndArchive(bundle: BundleRecord): Promise<BundleRecord> {
    const spooled = await this.builder.build(bundle.id, await this.store.bundleMembers(bundle.id));
    this.spooled.set(bundle.id, spooled);
    const archiveKey = this.archive.keyFor(bundle);
    await this.archive.store(archiveKey, spooled);
    const archived: BundleRecord = {
      ...bundle,
      status: 'archived',
      archiveKey,
      archiveBytes: spooled.kind === 'memory' ? spooled.data.length : spooled.length,
      updatedAt: this.clock.now(),
    };
    await this.store.bundlePut(archived);
    return archived;
  }

  /** From the spool when it is still here, else read back from the archive. */
  private async body(bundle: BundleRecord): Promise<{ body: Buffer | Readable; length: number }> {
    const spooled = this.spooled.get(bundle.id);
    if (spooled?.kind === 'memory') return { body: spooled.data, length: spooled.data.length };
    if (spooled?.kind === 'file') return { body: createReadStream(spooled.path), length: spooled.length };
    return this.archive.open(bundle.archiveKey!);
  }
}

/** Sortable by time, unique: `20261123T100000Z-<uuid>`. */
function bundleId(at: Date): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}-${randomUUID()}`;
}
