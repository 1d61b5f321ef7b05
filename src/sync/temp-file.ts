import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEMP_SUFFIX } from '../common/object-key';

// The callback API, promisified: for many small files it costs a third of the CPU of
// fs/promises FileHandles (measured: 5,000 files, 228 ms against 648 ms).
const open = promisify(fs.open);
const write = promisify(fs.write);
const writev = promisify(fs.writev);
const read = promisify(fs.read);
const ftruncate = promisify(fs.ftruncate);
const fdatasync = promisify(fs.fdatasync);
const futimes = promisify(fs.futimes);
const close = promisify(fs.close);
const rename = promisify(fs.rename);
const unlink = promisify(fs.unlink);

const processTag = randomBytes(4).toString('hex');
const COALESCE_BYTES = 1024 * 1024;
let sequence = 0;

/** A fresh name for a partial download in `dir` (unique per process; stale ones are swept at start). */
export function tempPathIn(dir: string): string {
  return join(dir, `.${processTag}-${(sequence++).toString(36)}${TEMP_SUFFIX}`);
}

/** A file being downloaded, beside its target; it becomes the target only through `commit`. */
export class TempFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  static async create(dir: string): Promise<TempFile> {
    const path = tempPathIn(dir);
    // Readable too: a ranged download of a single-part object is verified by reading it back.
    return new TempFile(path, await open(path, 'wx+', 0o644));
  }

  async write(chunk: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await write(this.fd, chunk, done, chunk.length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Writes `chunks` back to back from `position`, in one system call where the OS allows. */
  async writev(chunks: Uint8Array[], position: number): Promise<void> {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const { bytesWritten: written } = await writev(this.fd, chunks, position);
    if (written < total) await this.write(Buffer.concat(chunks).subarray(written), position + written);
  }

  /**
   * Streams `body` into the file from `start`, gathering chunks into writes of about 1 MiB (a
   * socket yields 64 KiB at a time). Measured on a 1 GiB object: 1.2 to 1.4 s against 1.4 to 1.7 s
   * with one write per chunk; letting the next batch be read while a write is in flight was slower
   * still (more writers contend for the file). Returns the number of bytes written.
   */
  async pump(body: AsyncIterable<Buffer>, start: number, onChunk?: (chunk: Buffer) => void): Promise<number> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let position = start;
    for await (const chunk of body) {
      onChunk?.(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= COALESCE_BYTES) {
        await this.writev(pending, position);
        position += pendingBytes;
        pending = [];
        pendingBytes = 0;
      }
    }
    if (pendingBytes > 0) await this.writev(pending, position);
    return position + pendingBytes - start;
  }

  async read(buffer: Buffer, position: number): Promise<number> {
    const { bytesRead } = await read(this.fd, buffer, 0, buffer.length, position);
    return bytesRead;
  }

  truncate(length: number): Promise<void> {
    return ftruncate(this.fd, length);
  }

  /** Makes the bytes durable, stamps the mtime and atomically replaces `target` with this file. */
  async commit(target: string, mtime: Date): Promise<void> {
    await fdatasync(this.fd);
    await futimes(this.fd, mtime, mtime);
    this.closed = true;
    await close(this.fd);
    await rename(this.path, target);
  }

  /** Closes and removes the file; never throws (it runs on error paths). */
  async discard(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await close(this.fd).catch(() => undefined);
    }
    await unlink(this.path).catch(() => undefined);
  }
}
