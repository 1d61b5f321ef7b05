import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import Piscina from 'piscina';
import { IntegrityError } from '../common/errors';

interface CommitFile {
  tmpPath: string;
  target: string;
  chunks: Uint8Array[];
  mtimeMs: number;
  /** hex MD5 the bytes must have; the worker checks it before writing anything. */
  md5?: string;
}
interface RangeOfFile {
  path: string;
  start: number;
  length: number;
}
type CommitResult = { ok: true } | { ok: false; code: string | undefined; message: string };
interface Pending {
  /** The object key, for error messages (never the local path). */
  key: string;
  file: CommitFile;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Objects up to this size are committed whole by a worker thread (see file-commit.worker.js). */
export const SMALL_OBJECT_BYTES = 1024 * 1024;
/** The error code the worker reports for an MD5 mismatch. */
const INTEGRITY_CODE = 'EINTEGRITY';
/** Files sent to a worker in one message at most. */
const BATCH_FILES = 16;
/**
 * Bytes after which a message goes at once: a batch is hashed and written by one worker, so large
 * files travel alone and spread over the workers (1 MiB takes about 2 ms to hash, far more than a
 * message costs).
 */
const BATCH_BYTES = 256 * 1024;
/**
 * Commit workers: two threads for the CPU part (hashing, copying into the page cache), which
 * together hash about 1.2 GB/s, more than a network link brings; an fdatasync that waits for a
 * disk waits in libuv's pool, not in a thread each (see file-commit.worker.js). A worker isolate
 * holds 9 to 13 MiB (Node 20 / 22), and four synchronous workers are no faster on set B of the
 * benchmark than two of these, on tmpfs and on ext4.
 */
const WORKERS = 2;
/**
 * Messages a worker holds at once: when a batch's fsyncs wait for a disk in libuv's pool, the next
 * batch is already in the worker (one at a time makes set B about 20% slower on a disk whose
 * fsyncs wait). Where fsyncs are fast the worker makes them itself and finishes a batch before it
 * reads the next.
 */
const TASKS_PER_WORKER = 4;
/**
 * A worker allocates little that lives (its files' bytes are in shared memory or transferred), but
 * V8 grows a thread's young generation to its default, two 16 MB semi-spaces, under steady work.
 * 8 MB keeps a full sync of a million objects at 214-219 MiB peak RSS instead of 236-238 MiB, for
 * 3-8% more CPU an object (164-173 us against 159 us; `SCALE_SIZES=1000000 node bench/scale.mjs`,
 * interleaved).
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/**
 * Writes small files atomically and durably from worker threads, keeping the event loop free.
 * Files that finish downloading in the same event-loop turn travel in one message: a message and
 * the wake-up of a worker cost about 60 us, more than writing a small file on a fast disk.
 */
@Injectable()
export class FileCommitter implements OnApplicationShutdown {
  private readonly pool = new Piscina<{ files: CommitFile[] } | RangeOfFile, CommitResult[] | Uint8Array>({
    filename: join(__dirname, 'file-commit.worker.js'),
    // Both start with the service and stay: a worker takes about 60 ms of CPU to start, which the
    // first sync would pay while it downloads (about 0.15 s of wall time on set B of the benchmark).
    minThreads: WORKERS,
    maxThreads: WORKERS,
    concurrentTasksPerWorker: TASKS_PER_WORKER,
    recordTiming: false,
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private scheduled = false;

  /**
   * Checks `md5` when given, then writes the chunks to `tmpPath`, fsyncs it, sets its mtime and
   * renames it to `target`. Chunks over a SharedArrayBuffer are read by the worker in place (the
   * caller keeps them unchanged until this settles); other chunks are handed over: one that owns
   * its whole ArrayBuffer is transferred as it is (no copy; unusable here afterwards), one that
   * shares its buffer is copied first, since structured clone would copy the whole buffer.
   */
  commit(key: string, tmpPath: string, target: string, chunks: readonly Uint8Array[], mtime: Date, md5?: string): Promise<void> {
    const owned = chunks.map((c) => (isShared(c) || (c.byteOffset === 0 && c.byteLength === c.buffer.byteLength) ? c : new Uint8Array(c)));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ key, file: { tmpPath, target, chunks: owned, mtimeMs: mtime.getTime(), md5 }, resolve, reject });
      this.queuedBytes += owned.reduce((sum, c) => sum + c.byteLength, 0);
      if (this.queue.length >= BATCH_FILES || this.queuedBytes >= BATCH_BYTES) this.send();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  private send(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.queuedBytes = 0;
    const files = batch.map((p) => p.file);
    // Shared memory is read by the worker in place; the caller keeps it until the commit settles.
    const transferList = files.flatMap((f) => f.chunks.filter((c) => !isShared(c)).map((c) => c.buffer as ArrayBuffer));
    (this.pool.run({ files }, { transferList }) as Promise<CommitResult[]>).then(
      (results) =>
        results.forEach((result, i) => {
          if (result.ok) batch[i].resolve();
          else batch[i].reject(failure(batch[i].key, result));
        }),
      (err: unknown) => batch.forEach((p) => p.reject(err instanceof Error ? err : new Error(String(err)))),
    );
  }

  /** The MD5 of a byte range of a file, computed by a worker (see file-commit.worker.js). */
  async md5OfRange(path: string, start: number, length: number): Promise<Buffer> {
    const digest = (await this.pool.run({ path, start, length }, { name: 'md5OfRange' })) as Uint8Array;
    return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  }

  async onApplicationShutdown(): Promise<void> {
    this.send();
    await this.pool.destroy();
  }
}

function isShared(chunk: Uint8Array): boolean {
  return chunk.buffer instanceof SharedArrayBuffer;
}

/** The error a failed commit stands for: a bad MD5 is an IntegrityError; anything else keeps its errno code. */
function failure(key: string, result: Extract<CommitResult, { ok: false }>): Error {
  if (result.code === INTEGRITY_CODE) return new IntegrityError(`${key}: ${result.message}`, { method: 'md5' });
  return Object.assign(new Error(result.message), { code: result.code });
}
