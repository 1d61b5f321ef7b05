import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { RetryLayer } from '../common/retry-policies';
import { stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { errorMessage, isErrno, NotFoundError } from '../common/errors';
import { KeyFilter } from '../common/key-filter';
import { Admission, admitKey } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import { ManifestEntry, ManifestStore } from '../state/manifest.store';
import { fileIdOf, FileCommitted, LocalFile, RemoteObject } from './file-version';
import { FileMapping, LocalDirs } from './local-dirs.service';
import { MirrorEvents } from './mirror.events';
import { FetchOptions, isRetryableDownload, ObjectFetcher } from './object.fetcher';
import { traced } from '../tracing/tracing';

export interface DownloadOptions extends FetchOptions {
  signal?: AbortSignal;
}

/** A committed version as the mirror holds it, for a reader. */
export interface CommittedVersion {
  fileId: string;
  etag: string;
  size: number;
}

/**
 * The mirror's facade: the only way the rest of the service changes or reads the local copy.
 * `download` and `remove` are the changes; callers take the key's turn in the sync work queue
 * first, so that changes to one key never overlap. Every commit is published on MirrorEvents.
 */
@Injectable()
export class MirrorService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(MirrorService.name);
  private readonly objectRetry: RetryLayer;

  constructor(
    private readonly config: AppConfig,
    private readonly dirs: LocalDirs,
    private readonly fetcher: ObjectFetcher,
    private readonly manifest: ManifestStore,
    private readonly events: MirrorEvents,
    private readonly clock: Clock,
  ) {
    // The object layer of retry-policies.ts.
    this.objectRetry = new RetryLayer(isRetryableDownload, config.sync.retryAttempts);
    this.objectRetry.onRetry((e) => this.logger.warn({ reason: 'error' in e ? String(e.error) : 'result' }, 'retrying download'));
  }

  onModuleInit(): void {
    this.dirs.open();
  }

  onApplicationBootstrap(): void {
    detach(this.dirs.removeStaleTempFiles(), this.logger, 'temp file cleanup failed');
  }

  get root(): string {
    return this.dirs.root;
  }

  /**
   * See admitKey: what a listed or notified key is to this mirror, under SYNC_INCLUDE / SYNC_EXCLUDE
   * or a run's filter that narrows them.
   */
  admit(key: string, options: { eventBucket?: string; filter?: KeyFilter } = {}): Admission {
    return admitKey(this.dirs.root, key, this.config.s3, options.eventBucket, options.filter ?? this.config.sync.filter);
  }

  localFile(mapping: FileMapping): LocalFile | undefined {
    return this.dirs.localFile(mapping);
  }

  committedVersion(key: string): CommittedVersion | undefined {
    const committed = this.manifest.committed(key);
    return committed && { fileId: fileIdOf(this.config.s3.bucket, key, committed.etag), ...committed };
  }

  /** Versions committed (downloaded, not adopted) at or after `sinceMs`, oldest first. */
  *committedSince(sinceMs: number): Generator<FileCommitted> {
    for (const entry of this.manifest.committedSince(sinceMs)) {
      if (entry.verifiedBy !== 'adopted') yield this.committedOf(entry);
    }
  }

  /**
   * The committed file of `key`, for serving or reading: NotFoundError when the mirror does not hold
   * it (or, with `expected`, holds another version now), UnsafeKeyError for refused keys and for a
   * path whose real location (after symlinks) is outside the root.
   */
  async openForRead(key: string, expected?: { fileId: string }): Promise<{ absPath: string; entry: ManifestEntry }> {
    const mapping = this.dirs.requireFile(key);
    const entry = this.manifest.get(key);
    if (!entry) throw new NotFoundError(`${key} is not in the mirror`);
    if (expected && fileIdOf(this.config.s3.bucket, key, entry.etag) !== expected.fileId) {
      throw new NotFoundError(`superseded: the mirror holds another version of ${key} now`);
    }
    return { absPath: await this.dirs.realPathInside(mapping), entry };
  }

  /** Downloads, verifies and commits one object. Throws UnsafeKeyError, ConflictError (a file/folder clash, before any GET), IntegrityError or the S3 error. */
  download(object: RemoteObject, options: DownloadOptions = {}): Promise<FileCommitted> {
    return traced('mirror.download', { 's3.key': object.key, 's3.size': object.size }, () => this.downloadVerified(object, options));
  }

  private async downloadVerified(object: RemoteObject, options: DownloadOptions): Promise<FileCommitted> {
    const mapping = this.dirs.requireFile(object.key);
    const clash = this.dirs.clash(mapping);
    if (clash) throw clash;
    await this.events.publishStarting(object);
    let entry: ManifestEntry;
    try {
      entry = await this.objectRetry.execute(
        ({ signal }) =>
          withTimeout(signal, this.config.sync.downloadTimeoutMs, object.key, (attempt) =>
            this.fetcher.fetch(object, mapping, attempt, options),
          ),
        options.signal,
      );
    } catch (err) {
      // Stopped, not failed: the version is still wanted and the next sync fetches it.
      if (!options.signal?.aborted) await this.events.publishNotCommitted(object, errorMessage(err));
      throw err;
    }
    this.manifest.put(entry);
    const committed = this.committedOf(entry);
    this.events.publishCommitted(committed);
    if (object.etag && committed.etag !== object.etag) {
      await this.events.publishNotCommitted(object, `superseded: S3 served version ${committed.etag}`);
    }
    return committed;
  }

  /** Records an existing local file as the committed copy of `object` (rclone's size + mtime rule). */
  adopt(object: RemoteObject): void {
    const mapping = this.dirs.requireFile(object.key);
    this.manifest.put({
      key: object.key,
      etag: object.etag,
      size: object.size,
      lastModified: object.lastModified,
      verifiedBy: 'adopted',
      localPath: mapping.relPath,
      syncedAt: this.clock.now(),
    });
  }

  /** Deletes the local file of `key` (if any), prunes emptied folders and forgets the key. */
  async remove(key: string): Promise<void> {
    const mapping = this.dirs.requireFile(key);
    await this.dirs.assertInsideRoot(dirname(mapping.absPath)).catch((e: unknown) => {
      if (!isErrno(e, 'ENOENT')) throw e;
    });
    try {
      const st = await stat(mapping.absPath);
      if (st.isFile()) await unlink(mapping.absPath);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
    this.manifest.remove(key);
    await this.dirs.pruneEmptyDirs(dirname(mapping.absPath));
  }

  private committedOf(entry: ManifestEntry): FileCommitted {
    return {
      fileId: fileIdOf(this.config.s3.bucket, entry.key, entry.etag),
      key: entry.key,
      etag: entry.etag,
      bytes: entry.size,
      verifiedBy: entry.verifiedBy,
    };
  }
}

/**
 * Runs `task` with a signal that aborts when `parent` does or after `ms` (a TimeoutError, which is
 * retried). One timer and one listener: AbortSignal.any/timeout cost several times more per call.
 */
async function withTimeout<T>(parent: AbortSignal, ms: number, what: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const attempt = new AbortController();
  const onAbort = (): void => attempt.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => attempt.abort(new DOMException(`${what}: no complete answer within ${ms} ms`, 'TimeoutError')), ms);
  try {
    return await task(attempt.signal);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onAbort);
  }
}
