import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { RetryPolicy } from 'cockatiel';
import picomatch from 'picomatch';
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, WriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { S3Repository } from '../aws/s3.repository';
import { BreakerService } from '../breaker/breaker.service';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { BundleCounts, BundleMember, BundleRecord, BundleStore } from '../state/state-store';
import { sealingDecision } from './bundle-policy';
import type { FileCommitted } from '../mirror/file-version';
import { MirrorService } from '../mirror/mirror.service';
import { isRetryable } from '../common/retryable';
import { deliveryRetryPolicy, HttpPoster, raiseForStatus } from './http-delivery';

const PENDING_PAGE = 10_000;

/** Where a built bundle waits until it is posted: memory below the threshold, a file above it. */
type Spooled = { kind: 'memory'; data: Buffer } | { kind: 'file'; path: string; length: number };

/** A Writable that keeps what it receives in memory until `limit` bytes, then moves it to `path`. */
export class Spool extends Writable {
  private chunks: Buffer[] = [];
  private length = 0;
  private file?: WriteStream;

  constructor(
    private readonly limit: number,
    private readonly path: string,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.length += chunk.length;
    if (!this.file && this.length <= this.limit) {
      this.chunks.push(chunk);
      return done();
    }
    if (!this.file) {
      this.file = createWriteStream(this.path);
      for (const c of this.chunks) this.file.write(c);
      this.chunks = [];
    }
    if (this.file.write(chunk)) done();
    else this.file.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.file) return done();
    this.file.end(() => done());
    this.file.once('error', done);
  }

  result(): Spooled {
    return this.file ? { kind: 'file', path: this.path, length: this.length } : { kind: 'memory', data: Buffer.concat(this.chunks) };
  }
}

/**
 * Bundles (the data aggregator): committed files that match BUNDLE_PATTERNS are grouped by count,
 * bytes and age, streamed into one gzip-compressed tar (or plain concatenation), archived to
 * ARCHIVE_BUCKET_NAME under a dated key, then POSTed to NIFI_ENDPOINT_URL with basic credentials
 * through its own circuit breaker. Membership is recorded in the BundleStore, so a file version is
 * bundled once; a failed post is retried with the same archived bundle.
 */
@Injectable()
export class BundleSink implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(BundleSink.name);
  private readonly matches: (key: string) => boolean;
  private readonly policy: RetryPolicy;
  private readonly http: HttpPoster;
  private readonly spoolDir: string;
  private readonly spooled = new Map<string, Spooled>();
  private readonly shutdown = new AbortController();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly config: AppConfig,
    private readonly mirror: MirrorService,
    private readonly store: BundleStore,
    private readonly s3: S3Repository,
    private readonly breakers: BreakerService,
    private readonly clock: Clock,
  ) {
    const matchers = config.bundles.patterns.map((p) => picomatch(p, { dot: true }));
    this.matches = (key) => matchers.some((m) => m(key));
    this.policy = deliveryRetryPolicy(config);
    this.http = new HttpPoster(4, config.delivery.timeoutMs);
    this.spoolDir = join(config.state.dir, 'bundle-spool');
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
    mkdirSync(this.spoolDir, { recursive: true });
    // Age is the only limit that time alone can reach: look at least twice per BUNDLE_MAX_AGE.
    this.timer = setInterval(() => this.kick(), Math.max(100, Math.min(5000, this.config.bundles.maxAgeMs / 2)));
    this.timer.unref();
    this.kick();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.shutdown.abort(new Error('service is shutting down'));
    await this.running;
  }

  onApplicationShutdown(): void {
    this.http.destroy();
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
      if (bundle.status === 'failed' && this.clock.nowMs() - bundle.updatedAt.getTime() < this.retryDelayMs(bundle)) continue;
      await this.advance(bundle);
    }
  }

  private retryDelayMs(bundle: BundleRecord): number {
    return Math.min(this.config.delivery.retryMaxMs, this.config.delivery.retryBaseMs * 2 ** Math.min(bundle.attempts, 16));
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
      if (bundle.status === 'sealed') bundle = await this.archive(bundle);
      await this.post(bundle);
      await this.store.bundlePut({
        ...bundle,
        status: 'posted',
        attempts: bundle.attempts + 1,
        lastError: undefined,
        updatedAt: this.clock.now(),
      });
      await this.discardSpool(bundle.id);
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
  private async archive(bundle: BundleRecord): Promise<BundleRecord> {
    const members = await this.store.bundleMembers(bundle.id);
    const spool = new Spool(this.config.bundles.spoolMemoryBytes, join(this.spoolDir, `${bundle.id}.gz`));
    await pipeline(Readable.from(this.content(members)), createGzip(), spool);
    const spooled = spool.result();
    this.spooled.set(bundle.id, spooled);
    const archiveKey = `${this.config.bundles.archivePrefix}${bundle.createdAt.toISOString().slice(0, 10).replace(/-/g, '/')}/${bundle.id}.${this.config.bundles.format === 'tar' ? 'tar.gz' : 'gz'}`;
    const body = spooled.kind === 'memory' ? spooled.data : createReadStream(spooled.path);
    await this.s3.upload(this.config.bundles.archiveBucket!, archiveKey, body, 'application/gzip');
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

  /** The uncompressed bundle: a tar of the members (names kept) or their bytes one after the other. */
  private async *content(members: BundleMember[]): AsyncGenerator<Buffer> {
    const tar = this.config.bundles.format === 'tar' ? tarPack() : undefined;
    const files: Array<{ member: BundleMember; path: string; size: number; mtime: Date }> = [];
    for (const member of members) {
      if (this.mirror.committedVersion(member.key)?.fileId !== member.fileId) {
        this.logger.warn(
          { fileId: member.fileId },
          'left out of its bundle: the mirror holds another version now (that one is bundled on its own)',
        );
        continue;
      }
      const { absPath } = await this.mirror.openForRead(member.key, member);
      const st = await stat(absPath);
      files.push({ member, path: absPath, size: st.size, mtime: st.mtime });
    }
    if (!tar) {
      for (const f of files) for await (const chunk of createReadStream(f.path)) yield chunk as Buffer;
      return;
    }
    // The packer is fed entry by entry while its output is drained here.
    const writing = (async () => {
      for (const f of files) {
        const entry = tar.entry({ name: f.member.key, size: f.size, mtime: f.mtime, mode: 0o644 });
        await pipeline(createReadStream(f.path), entry);
      }
      tar.finalize();
    })();
    writing.catch((err: unknown) => tar.destroy(err as Error));
    for await (const chunk of tar) yield chunk as Buffer;
    await writing;
  }

  /** POSTs the archived bundle: from the spool when it is still here, else read back from the archive. */
  private async post(bundle: BundleRecord): Promise<void> {
    const { url, username, password } = this.config.bundles;
    const headers: Record<string, string> = {
      'content-type': 'application/gzip',
      filename: bundle.archiveKey!.split('/').pop()!,
      'x-bundle-id': bundle.id,
      'x-bundle-files': String(bundle.files),
      'x-bundle-format': this.config.bundles.format,
    };
    if (username !== undefined) headers.authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    const breaker = this.breakers.for(url!);
    await this.policy.execute(
      ({ signal }) =>
        breaker.execute(
          async () => {
            const { body, length } = await this.body(bundle);
            raiseForStatus(await this.http.post(url!, headers, body, length, signal), this.clock.nowMs());
          },
          isRetryable,
          signal,
        ),
      this.shutdown.signal,
    );
  }

  private async body(bundle: BundleRecord): Promise<{ body: Buffer | Readable; length: number }> {
    const spooled = this.spooled.get(bundle.id);
    if (spooled?.kind === 'memory') return { body: spooled.data, length: spooled.data.length };
    if (spooled?.kind === 'file') return { body: createReadStream(spooled.path), length: spooled.length };
    return this.s3.openObject(this.config.bundles.archiveBucket!, bundle.archiveKey!);
  }

  private async discardSpool(id: string): Promise<void> {
    const spooled = this.spooled.get(id);
    this.spooled.delete(id);
    if (spooled?.kind === 'file') await rm(spooled.path, { force: true });
  }
}

/** Sortable by time, unique: `20261123T100000Z-<uuid>`. */
function bundleId(at: Date): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}-${randomUUID()}`;
}
