import { Injectable } from '@nestjs/common';
import { RetryLayer } from '../common/retry-policies';
import { dirname } from 'node:path';
import { ObjectHead, S3Repository, S3RequestError } from '../aws/s3.repository';
import { Clock } from '../common/clock';
import { IntegrityError, isErrno } from '../common/errors';
import { isRetryable } from '../common/retryable';
import { AppConfig } from '../config/app-config';
import { ManifestEntry } from '../state/manifest.store';
import { receiveInMemory, receiveIntoFile } from './body-sinks';
import { fetchStrategy, planRanges, wholeBodySink } from './download-plan';
import { FileCommitter } from './file.committer';
import type { RemoteObject } from './file-version';
import { chooseVerification, createDigest, Digest, multipartEtag, multipartPartCount, Verification } from './integrity';
import { FileMapping, folderInTheWay, LocalDirs } from './local-dirs.service';
import { TempFile, tempPathIn } from './temp-file';

export interface FetchOptions {
  /** Called with each chunk's size as it is written (progress). */
  onBytes?: (n: number) => void;
  sequencer?: string;
}

/**
 * One attempt at bringing an object version to disk: streamed into a temporary file beside its
 * target (or received in memory and handed to a commit worker), verified, fsynced, its mtime set,
 * then renamed into place, so a reader sees either the previous complete file or the new verified
 * one. Resolves with the manifest row to record; retries, timeouts and recording are the caller's
 * (MirrorService).
 */
@Injectable()
export class ObjectFetcher {
  /** A failed range is fetched again on its own; a corrupt one fails the attempt (the whole object is fetched again). */
  private readonly rangeRetry: RetryLayer;

  constructor(
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
    private readonly dirs: LocalDirs,
    private readonly committer: FileCommitter,
    private readonly clock: Clock,
  ) {
    // The range layer of retry-policies.ts; a range's bytes failing their check go to the object layer.
    this.rangeRetry = new RetryLayer((e) => !(e instanceof IntegrityError) && isRetryable(e), config.sync.retryAttempts);
  }

  fetch(object: RemoteObject, mapping: FileMapping, signal: AbortSignal, options: FetchOptions): Promise<ManifestEntry> {
    return fetchStrategy(object.size, this.config.sync.multipartThresholdBytes) === 'ranged'
      ? this.fetchRanged(object, mapping, signal, options)
      : this.fetchWhole(object, mapping, signal, options);
  }

  private async fetchWhole(object: RemoteObject, mapping: FileMapping, signal: AbortSignal, options: FetchOptions): Promise<ManifestEntry> {
    const { head, length, body } = await this.s3.getObject(object.key, { signal, expectedSize: object.size });
    try {
      const verification = chooseVerification(head, this.config.sync.verifyIntegrity);
      if (wholeBodySink(head.size) === 'file') {
        // MD5, the common check, is left to a worker once the file is written (see md5OfFile);
        // the other checks are cheap enough to run on the blocks as they arrive.
        const digest = verification.method === 'md5' ? undefined : await createDigest(verification.method);
        return await this.writeAtomically(mapping, head, async (file) => {
          const bytes = await receiveIntoFile(body, file, 0, head.size, digest && ((block) => digest.update(block)), options.onBytes);
          this.checkSize(object.key, bytes, head.size);
          if (verification.method === 'md5') this.checkDigest(object.key, verification, await this.md5OfFile(file, bytes));
          else if (digest) this.checkDigest(object.key, verification, digest.result());
          return this.commitRecord(mapping, head, verification, options);
        });
      }
      // Small: the bytes go to a worker as they are (no copy), and the worker checks the MD5, the
      // common case, so that hashing is spread over the cores.
      const received = await receiveInMemory(body, length, options.onBytes);
      try {
        this.checkSize(object.key, received.arrived, head.size);
        const digest = verification.method === 'md5' ? undefined : await createDigest(verification.method);
        if (digest) {
          digest.update(received.bytes);
          this.checkDigest(object.key, verification, digest.result());
        }
        const dir = dirname(mapping.absPath);
        await this.dirs.usingDir(dir, mapping.key, async () => {
          try {
            await this.committer.commit(
              mapping.key,
              tempPathIn(dir),
              mapping.absPath,
              [received.bytes],
              head.lastModified,
              verification.method === 'md5' ? verification.expected : undefined,
            );
          } catch (err) {
            throw asClash(err, mapping.key);
          }
        });
      } finally {
        received.release();
      }
      return this.commitRecord(mapping, head, verification, options);
    } finally {
      // Unread (an error came first): the connection cannot be reused.
      body.discard();
    }
  }

  private async fetchRanged(
    object: RemoteObject,
    mapping: FileMapping,
    signal: AbortSignal,
    options: FetchOptions,
  ): Promise<ManifestEntry> {
    // Under the download's deadline like the GETs: a HEAD that stalls fails the attempt.
    const head = await this.s3.headObject(object.key, undefined, signal);
    if (!head) throw new S3RequestError(404, 'NoSuchKey', `${object.key} no longer exists`);
    const partSize = this.config.sync.verifyIntegrity ? await this.learnPartSize(object.key, head, signal) : undefined;
    const verification = chooseVerification({ ...head, partSize }, this.config.sync.verifyIntegrity);
    const chunk = verification.partSize ?? this.config.sync.multipartChunkBytes;
    const ranges = planRanges(head.size, chunk);
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
            const length = range.end - range.start + 1;
            const got = await receiveIntoFile(body, file, range.start, length, undefined, options.onBytes).finally(() => body.discard());
            this.checkSize(`${object.key} [${range.start}-${range.end}]`, got, length);
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
        const digest = await createDigest(verification.method);
        if (digest) this.checkDigest(object.key, verification, await readBackDigest(file, digest));
      }
      return this.commitRecord(mapping, head, verification, options);
    });
  }

  /**
   * S3 answers a HEAD with PartNumber=1 with that part's length and the part count; an endpoint that
   * ignores the parameter returns the whole object, which is detected and treated as unknown.
   */
  private async learnPartSize(key: string, head: ObjectHead, signal: AbortSignal): Promise<number | undefined> {
    const parts = multipartPartCount(head.etag);
    if (parts === undefined || head.etagIsOpaque) return undefined;
    const first = await this.s3.headObject(key, 1, signal);
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

  private async writeAtomically(
    mapping: FileMapping,
    head: ObjectHead,
    write: (file: TempFile) => Promise<ManifestEntry>,
  ): Promise<ManifestEntry> {
    const dir = dirname(mapping.absPath);
    return this.dirs.usingDir(dir, mapping.key, async () => {
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
  }

  private commitRecord(mapping: FileMapping, head: ObjectHead, verification: Verification, options: FetchOptions): ManifestEntry {
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
}

async function readBackDigest(file: TempFile, digest: Digest): Promise<string> {
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

/** A rename onto a folder means another key made that path a folder: a clash, not a crash. */
function asClash(err: unknown, key: string): unknown {
  if (isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ENOTEMPTY')) {
    return folderInTheWay(key);
  }
  return err;
}

/**
 * The whole-object retry: what is retryable for any call (a corrupt body included, see
 * IntegrityError), and an object that changed under a ranged read (412 on If-Match), which is
 * fetched again from its new head. A range retries only the former, and never a corrupt range.
 */
export function isRetryableDownload(err: Error): boolean {
  if (err instanceof S3RequestError && err.statusCode === 412) return true;
  return isRetryable(err);
}
