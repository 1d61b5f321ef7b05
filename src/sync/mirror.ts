import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { ExponentialBackoff, handleWhen, retry, RetryPolicy } from 'cockatiel';
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { mkdir, opendir, realpath, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { ObjectHead, S3Repository, S3RequestError } from '../aws/s3.repository';
import { isTransient } from '../aws/s3-errors';
import { Clock } from '../common/clock';
import { AppError, ConflictError, errorMessage, IntegrityError, isErrno, NotFoundError, UnsafeKeyError } from '../common/errors';
import { KeyedLock } from '../common/keyed-lock';
import { isStrictlyInside, KeyMapping, mapKey, TEMP_SUFFIX } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import { ManifestEntry, ManifestStore, VerificationMethod } from '../state/manifest.store';
import { FileCommitter, SMALL_OBJECT_BYTES } from './file-committer';
import { receiveInMemory, receiveIntoFile } from './body-sinks';
import { TempFile, tempPathIn } from './temp-file';
import { chooseVerification, createDigest, multipartEtag, multipartPartCount, Verification } from './integrity';
import type { LocalFile, RemoteObject } from './sync-planner';

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Called with each chunk's size as it is written (progress). */
  onBytes?: (n: number) => void;
  sequencer?: string;
}

export interface Committed {
  key: string;
  bytes: number;
  etag: string;
  verifiedBy: VerificationMethod;
}

/** Told of every object version the mirror commits (downloads, not adoptions or deletions). */
export type CommitListener = (committed: Committed) => void;

/**
 * Told when the download of a listed or notified version starts, and when it ends without that
 * version being committed (failed after its retries, or another version was found). Awaited, in
 * order, under the key's lock: what it records about a version never lands after the commit.
 */
export interface DownloadObserver {
  starting(object: RemoteObject): Promise<void>;
  notCommitted(object: RemoteObject, reason: string): Promise<void>;
}

type FileMapping = Extract<KeyMapping, { kind: 'file' }>;

const DIR_CHECK_TTL_MS = 5000;

/**
 * The local side of the mirror. Every object reaches disk the same way: streamed into a temporary
 * file beside its target, verified, fsynced, its mtime set, then renamed into place, so a reader
 * sees either the previous complete file or the new verified one. Changes to one key never overlap.
 */
@Injectable()
export class Mirror implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(Mirror.name);
  readonly root: string;
  private realRoot = '';
  private readonly locks = new KeyedLock();
  private readonly objectRetry: RetryPolicy;
  private readonly rangeRetry: RetryPolicy;
  /**
   * Directories created and checked to resolve inside the root, shared by concurrent downloads into
   * one folder. Entries expire quickly so that a symlink planted later is still caught.
   */
  private readonly checkedDirs = new Map<string, { at: number; ready: Promise<void> }>();
  private readonly commitListeners: CommitListener[] = [];
  private readonly downloadObservers: DownloadObserver[] = [];
  /** Folders being written into, with how many writes use them (see usingDir). */
  private readonly dirsInUse = new Map<string, number>();

  constructor(
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
    private readonly manifest: ManifestStore,
    private readonly clock: Clock,
    private readonly committer: FileCommitter,
  ) {
    this.root = config.sync.localDir;
    const backoff = new ExponentialBackoff({ initialDelay: 200, maxDelay: 10_000 });
    const attempts = config.sync.retryAttempts;
    this.objectRetry = retry(handleWhen(isRetryable), { maxAttempts: attempts, backoff });
    this.rangeRetry = retry(handleWhen((e) => !(e instanceof IntegrityError) && isRetryable(e)), { maxAttempts: attempts, backoff });
    this.objectRetry.onRetry((e) => this.logger.warn({ reason: 'error' in e ? String(e.error) : 'result' }, 'retrying download'));
  }

  onModuleInit(): void {
    mkdirSync(this.root, { recursive: true });
    this.realRoot = realpathSync(this.root);
  }

  onApplicationBootstrap(): void {
    // Partial files are only left by a crash; nothing downloads yet, so all of them are stale.
    void this.removeStaleTempFiles().catch((err: unknown) => this.logger.warn({ err }, 'temp file cleanup failed'));
  }

  onCommitted(listener: CommitListener): void {
    this.commitListeners.push(listener);
  }

  observeDownloads(observer: DownloadObserver): void {
    this.downloadObservers.push(observer);
  }

  map(key: string): KeyMapping {
    return mapKey(this.root, key);
  }

  /** The regular file a key maps to, if one exists (synchronous: one lstat, used per listed key). */
  localFile(mapping: FileMapping): LocalFile | undefined {
    const st = lstatSync(mapping.absPath, { throwIfNoEntry: false });
    return st?.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : undefined;
  }

  /**
   * The committed file for `key`, for serving: refused keys throw UnsafeKeyError, and a path whose
   * real location (after symlinks) is outside the root is refused too.
   */
  async resolveForRead(key: string): Promise<{ absPath: string; entry: ManifestEntry }> {
    const mapping = this.requireFile(key);
    const entry = this.manifest.get(key);
    if (!entry) throw new NotFoundError(`${key} is not in the mirror`);
    let real: string;
    try {
      real = await realpath(mapping.absPath);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new NotFoundError(`${key} is not in the mirror`);
      throw err;
    }
    if (!isStrictlyInside(this.realRoot, real)) throw new UnsafeKeyError(key, 'resolves outside the mirror directory');
    return { absPath: real, entry };
  }

  /** Downloads, verifies and commits one object. Throws UnsafeKeyError, ConflictError, IntegrityError or the S3 error. */
  download(object: RemoteObject, options: DownloadOptions = {}): Promise<Committed> {
    const mapping = this.requireFile(object.key);
    return this.locks.run(object.key, async () => {
      await this.tell((o) => o.starting(object));
      let committed: Committed;
      try {
        committed = await this.objectRetry.execute(
          ({ signal }) =>
            withTimeout(signal, this.config.sync.downloadTimeoutMs, object.key, (attempt) =>
              object.size >= this.config.sync.multipartThresholdBytes
                ? this.fetchRanged(object, mapping, attempt, options)
                : this.fetchWhole(object, mapping, attempt, options),
            ),
          options.signal,
        );
      } catch (err) {
        // Stopped, not failed: the version is still wanted and the next sync fetches it.
        if (!options.signal?.aborted) await this.tell((o) => o.notCommitted(object, errorMessage(err)));
        throw err;
      }
      if (object.etag && committed.etag !== object.etag) {
        await this.tell((o) => o.notCommitted(object, `superseded: S3 served version ${committed.etag}`));
      }
      return committed;
    });
  }

  /** An observer's failure is logged and never fails the download it was told of. */
  private async tell(call: (observer: DownloadObserver) => Promise<void>): Promise<void> {
    for (const observer of this.downloadObservers) {
      try {
        await call(observer);
      } catch (err) {
        this.logger.error({ err: errorMessage(err) }, 'download observer failed');
      }
    }
  }

  /** Records an existing local file as the committed copy of `object` (rclone's size + mtime rule). */
  adopt(object: RemoteObject): void {
    const mapping = this.requireFile(object.key);
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
  remove(key: string): Promise<void> {
    const mapping = this.requireFile(key);
    return this.locks.run(key, async () => {
      await this.assertInsideRoot(dirname(mapping.absPath)).catch((e: unknown) => {
        if (!isErrno(e, 'ENOENT')) throw e;
      });
      try {
        const st = await stat(mapping.absPath);
        if (st.isFile()) await unlink(mapping.absPath);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
      this.manifest.remove(key);
      await this.pruneEmptyDirs(dirname(mapping.absPath));
    });
  }

  private requireFile(key: string): FileMapping {
    const mapping = this.map(key);
    if (mapping.kind === 'file') return mapping;
    throw new UnsafeKeyError(key, mapping.kind === 'refused' ? mapping.reason : 'folder marker, not a file');
  }

  private async fetchWhole(object: RemoteObject, mapping: FileMapping, signal: AbortSignal, options: DownloadOptions): Promise<Committed> {
    const { head, length, body } = await this.s3.getObject(object.key, { signal });
    try {
      const verification = chooseVerification(head, this.config.sync.verifyIntegrity);
      if (head.size > SMALL_OBJECT_BYTES) {
        // MD5, the common check, is left to a worker once the file is written (see md5OfFile);
        // the other checks are cheap enough to run on the blocks as they arrive.
        const digest = verification.method === 'md5' ? undefined : createDigest(verification.method);
        return await this.writeAtomically(mapping, head, async (file) => {
          const bytes = await receiveIntoFile(body, file, 0, digest && ((block) => digest.update(block)), options.onBytes);
          this.checkSize(object.key, bytes, head.size);
          if (verification.method === 'md5') this.checkDigest(object.key, verification, await this.md5OfFile(file, bytes));
          else if (digest) this.checkDigest(object.key, verification, await digest.result());
          return this.commitRecord(mapping, head, verification, options);
        });
      }
      // Small: the bytes go to a worker as they are (no copy), and the worker checks the MD5, the
      // common case, so that hashing is spread over the cores.
      const received = await receiveInMemory(body, length, options.onBytes);
      try {
        this.checkSize(object.key, received.bytes.length, head.size);
        const digest = verification.method === 'md5' ? undefined : createDigest(verification.method);
        if (digest) {
          digest.update(received.bytes);
          this.checkDigest(object.key, verification, await digest.result());
        }
        const dir = dirname(mapping.absPath);
        await this.usingDir(dir, mapping.key, async () => {
          try {
            await this.committer.commit(mapping.key, tempPathIn(dir), mapping.absPath, [received.bytes], head.lastModified, verification.method === 'md5' ? verification.expected : undefined);
          } catch (err) {
            throw asClash(err, mapping.key);
          }
        });
      } finally {
        received.release();
      }
      return this.record(this.commitRecord(mapping, head, verification, options));
    } finally {
      // Unread (an error came first): the connection cannot be reused.
      body.discard();
    }
  }

  private async fetchRanged(object: RemoteObject, mapping: FileMapping, signal: AbortSignal, options: DownloadOptions): Promise<Committed> {
    const head = await this.s3.headObject(object.key);
    if (!head) throw new S3RequestError(404, 'NoSuchKey', `${object.key} no longer exists`);
    const partSize = this.config.sync.verifyIntegrity ? await this.learnPartSize(object.key, head) : undefined;
    const verification = chooseVerification({ ...head, partSize }, this.config.sync.verifyIntegrity);
    const chunk = verification.partSize ?? this.config.sync.multipartChunkBytes;
    const ranges: Array<{ start: number; end: number }> = [];
    for (let start = 0; start < head.size; start += chunk) ranges.push({ start, end: Math.min(head.size, start + chunk) - 1 });
    const partMd5s: Array<Promise<Buffer>> = new Array<Promise<Buffer>>(ranges.length);

    return this.writeAtomically(mapping, head, async (file) => {
      await file.truncate(head.size);
      // The first range to fail stops the others.
      const abort = new AbortController();
      const stopRanges = (): void => abort.abort(signal.reason);
      signal.addEventListener('abort', stopRanges, { once: true });
      const rangeSignal = abort.signal;
      let next = 0;
      let bytes = 0;
      const worker = async (): Promise<void> => {
        while (next < ranges.length) {
          const index = next++;
          const range = ranges[index];
          await this.rangeRetry.execute(async () => {
            const { body } = await this.s3.getObject(object.key, { range, ifMatch: head.etag, signal: rangeSignal });
            const got = await receiveIntoFile(body, file, range.start, undefined, options.onBytes).finally(() => body.discard());
            this.checkSize(`${object.key} [${range.start}-${range.end}]`, got, range.end - range.start + 1);
            bytes += got;
          }, rangeSignal);
          // Each part is hashed by a worker while the next ones download: MD5 runs at about
          // 600 MB/s on one core, slower than the network, and would hold up the event loop.
          if (verification.method === 'multipart-etag') {
            const md5 = this.committer.md5OfRange(file.path, range.start, range.end - range.start + 1);
            md5.catch(() => undefined); // awaited below; handled now so that an early failure is not "unhandled"
            partMd5s[index] = md5;
          }
        }
      };
      const workers = Array.from({ length: Math.min(this.config.sync.multipartConcurrency, ranges.length) }, () =>
        worker().catch((e: unknown) => {
          abort.abort(e);
          throw e;
        }),
      );
      try {
        await Promise.all(workers);
      } finally {
        signal.removeEventListener('abort', stopRanges);
        // Settled before the file can be discarded or committed.
        await Promise.allSettled(partMd5s);
      }
      this.checkSize(object.key, bytes, head.size);
      if (verification.method === 'multipart-etag') {
        this.checkDigest(object.key, verification, multipartEtag(await Promise.all(partMd5s)));
      } else if (verification.method === 'md5') {
        this.checkDigest(object.key, verification, await this.md5OfFile(file, head.size));
      } else {
        const digest = createDigest(verification.method);
        if (digest) this.checkDigest(object.key, verification, await readBackDigest(file, digest));
      }
      return this.commitRecord(mapping, head, verification, options);
    });
  }

  /**
   * S3 answers a HEAD with PartNumber=1 with that part's length and the part count; an endpoint that
   * ignores the parameter returns the whole object, which is detected and treated as unknown.
   */
  private async learnPartSize(key: string, head: ObjectHead): Promise<number | undefined> {
    const parts = multipartPartCount(head.etag);
    if (parts === undefined || head.etagIsOpaque) return undefined;
    const first = await this.s3.headObject(key, 1);
    if (!first || first.partsCount !== parts || first.size <= 0) return undefined;
    const expectedParts = Math.ceil(head.size / first.size);
    return expectedParts === parts ? first.size : undefined;
  }

  /**
   * The MD5 of a written file, computed by a commit worker from the page cache: on the event loop,
   * MD5 (about 600 MB/s) would be the one thing all concurrent downloads wait for, while the
   * workers spread it over the cores.
   */
  private async md5OfFile(file: TempFile, length: number): Promise<string> {
    return (await this.committer.md5OfRange(file.path, 0, length)).toString('hex');
  }

  private async writeAtomically(mapping: FileMapping, head: ObjectHead, write: (file: TempFile) => Promise<ManifestEntry>): Promise<Committed> {
    const dir = dirname(mapping.absPath);
    const entry = await this.usingDir(dir, mapping.key, async () => {
      const file = await TempFile.create(dir);
      try {
        const written = await write(file);
        await file.commit(mapping.absPath, head.lastModified);
        return written;
      } catch (err) {
        await file.discard();
        throw asClash(err, mapping.key);
      }
    });
    return this.record(entry);
  }

  private record(entry: ManifestEntry): Committed {
    this.manifest.put(entry);
    const committed = { key: entry.key, bytes: entry.size, etag: entry.etag, verifiedBy: entry.verifiedBy };
    for (const listener of this.commitListeners) listener(committed);
    return committed;
  }

  private commitRecord(mapping: FileMapping, head: ObjectHead, verification: Verification, options: DownloadOptions): ManifestEntry {
    return {
      key: mapping.key,
      etag: head.etag,
      size: head.size,
      lastModified: head.lastModified,
      versionId: head.versionId,
      sequencer: options.sequencer,
      checksum: verification.expected,
      verifiedBy: verification.method,
      localPath: mapping.relPath,
      syncedAt: this.clock.now(),
    };
  }

  private checkSize(what: string, got: number, expected: number): void {
    if (got !== expected) throw new IntegrityError(`${what}: received ${got} bytes, expected ${expected}`, { got, expected });
  }

  private checkDigest(key: string, verification: Verification, actual: string): void {
    if (actual !== verification.expected) {
      throw new IntegrityError(`${key}: ${verification.method} mismatch (expected ${verification.expected}, got ${actual})`, {
        method: verification.method,
      });
    }
  }

  /** mkdir -p, refusing a path that leaves the root through a symlink or crosses a file (a/b vs a). */
  private ensureDir(dir: string, key: string): Promise<void> {
    const now = this.clock.nowMs();
    const cached = this.checkedDirs.get(dir);
    if (cached && now - cached.at < DIR_CHECK_TTL_MS) return cached.ready;
    const ready = this.createDir(dir, key);
    this.checkedDirs.set(dir, { at: now, ready });
    ready.catch(() => this.checkedDirs.delete(dir));
    if (this.checkedDirs.size > 10_000) this.checkedDirs.clear();
    return ready;
  }

  private async createDir(dir: string, key: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      if (isErrno(err, 'EEXIST') || isErrno(err, 'ENOTDIR')) {
        throw new ConflictError(`file/folder clash: a parent of "${key}" is a file locally (another object has that key)`);
      }
      throw err;
    }
    await this.assertInsideRoot(dir);
  }

  private async assertInsideRoot(dir: string): Promise<void> {
    const real = await realpath(dir);
    if (real !== this.realRoot && !isStrictlyInside(this.realRoot, real)) {
      throw new AppError('UNSAFE_KEY', `${dir} resolves outside the mirror directory (symlink?)`);
    }
  }

  /**
   * Creates `dir` (see ensureDir) and runs `task`, which writes into it, with `dir` and its parents
   * marked in use: the pruning of folders emptied by the delete of another key skips them. A prune
   * that had already started can still remove the folder under the write (ENOENT): it is then
   * created again and the write made once more. Real-time events make such neighbours common.
   */
  private async usingDir<T>(dir: string, key: string, task: () => Promise<T>): Promise<T> {
    const dirs: string[] = [];
    for (let d = dir; d.startsWith(this.root + sep); d = dirname(d)) dirs.push(d);
    for (const d of dirs) this.dirsInUse.set(d, (this.dirsInUse.get(d) ?? 0) + 1);
    try {
      for (let attempt = 0; ; attempt++) {
        await this.ensureDir(dir, key);
        try {
          return await task();
        } catch (err) {
          if (attempt > 0 || !isErrno(err, 'ENOENT')) throw err;
          this.checkedDirs.delete(dir);
        }
      }
    } finally {
      for (const d of dirs) {
        const n = this.dirsInUse.get(d)! - 1;
        if (n === 0) this.dirsInUse.delete(d);
        else this.dirsInUse.set(d, n);
      }
    }
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root + sep) && !this.dirsInUse.has(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
      this.checkedDirs.delete(current);
      current = dirname(current);
    }
  }

  private async removeStaleTempFiles(): Promise<void> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      for await (const entry of await opendir(dir)) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile() && entry.name.endsWith(TEMP_SUFFIX)) {
          await unlink(path).catch(() => undefined);
          removed++;
        }
      }
    };
    await walk(this.root);
    if (removed > 0) this.logger.log({ removed }, 'removed partial downloads left by a previous run');
  }
}

async function readBackDigest(file: TempFile, digest: NonNullable<ReturnType<typeof createDigest>>): Promise<string> {
  const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
  let position = 0;
  for (;;) {
    const bytesRead = await file.read(buffer, position);
    if (bytesRead === 0) break;
    digest.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return digest.result();
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

/** A rename onto a folder means another key made that path a folder: a clash, not a crash. */
function asClash(err: unknown, key: string): unknown {
  if (isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ENOTEMPTY')) {
    return new ConflictError(`file/folder clash: "${key}" is a folder locally, so the object cannot be written`);
  }
  return err;
}


/** Worth another attempt: what is transient for any S3 call, a corrupted body, or an object that changed under a ranged read. */
export function isRetryable(err: Error): boolean {
  if (err instanceof IntegrityError) return true;
  if (err instanceof S3RequestError && err.statusCode === 412) return true;
  if (err instanceof AppError) return false;
  return isTransient(err);
}
