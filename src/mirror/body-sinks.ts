import type { BodySink, ResponseBody } from '../aws/s3.repository';
import { MemoryPool } from './memory-pool';
import type { TempFile } from './temp-file';

const BLOCK_BYTES = 1024 * 1024;
/**
 * Blocks being written per download (or per range) at most: beyond that the socket waits, the disk
 * being slower than the network. One block fills while one is written: a file takes two writes at
 * a time (temp-file.ts), so a second block waiting would only add memory (8 MiB on set C of the
 * benchmark, for no speed).
 */
const BLOCKS_WRITING_PER_SINK = 1;
/** Free blocks kept for the next downloads (a ranged 1 GiB download uses eight). */
const POOLED_BLOCKS = 32;

const blocks = new MemoryPool<Buffer>(() => Buffer.allocUnsafeSlow(BLOCK_BYTES), POOLED_BLOCKS);

/** Bodies at least this large are received into pooled shared memory (see receiveInMemory). */
const SHARED_FROM_BYTES = 64 * 1024;
const SLAB_BYTES = 1024 * 1024;
/**
 * Slabs in existence at most (16 MiB): a body that finds none free waits for one, its bytes held
 * back in the kernel. Fresh memory costs a page fault per 4 KiB when first written (a fresh slab
 * per download of the default SYNC_CONCURRENCY costs 0.17 s of the event loop on set B of the
 * benchmark); a few slabs used again and again cost nothing, and 16 in flight keep the commit
 * workers and the network busy.
 */
const MAX_SLABS = 16;
const slabs = new MemoryPool(() => new SharedArrayBuffer(SLAB_BYTES), MAX_SLABS, MAX_SLABS);

export interface ReceivedBody {
  bytes: Uint8Array;
  /** Bytes that arrived: more than `bytes` holds when a body without Content-Length runs past `length`. */
  arrived: number;
  /** Gives the memory back for another body; `bytes` must not be used afterwards. */
  release(): void;
}

/**
 * Receives a whole body of `length` bytes into memory, the socket reading straight into it. Bodies
 * from 64 KiB to 1 MiB land in pooled SharedArrayBuffer slabs, which a worker reads without a copy
 * or a transfer and which are used again: fresh memory for every object costs a page fault per
 * 4 KiB and keeps garbage collection busy. Smaller bodies get a buffer with an ArrayBuffer of their own, which can be transferred.
 * The client never reads past `length`, so the memory is exactly the body's.
 */
export async function receiveInMemory(body: ResponseBody, length: number, onBytes?: (n: number) => void): Promise<ReceivedBody> {
  const slab = length >= SHARED_FROM_BYTES && length <= SLAB_BYTES ? await slabs.acquire() : undefined;
  const sink = new MemorySink(slab ? new Uint8Array(slab, 0, length) : Buffer.allocUnsafeSlow(length), onBytes);
  let released = false;
  const release = (): void => {
    if (slab && !released) slabs.give(slab);
    released = true;
  };
  try {
    await body.read(sink);
  } catch (err) {
    release();
    throw err;
  }
  return { bytes: sink.result(), arrived: sink.arrived, release };
}

/**
 * Where bytes past the expected end of a body without Content-Length (chunked or close-delimited)
 * go: counted, never kept, so the size check refuses the body and no neighbour's memory or file
 * range is overwritten.
 */
const OVERFLOW = Buffer.allocUnsafeSlow(64 * 1024);

class MemorySink implements BodySink {
  private used = 0;
  private overflow = 0;

  constructor(
    private readonly memory: Uint8Array,
    private readonly onBytes?: (n: number) => void,
  ) {}

  get arrived(): number {
    return this.used + this.overflow;
  }

  space(): Uint8Array {
    return this.used < this.memory.length ? this.memory.subarray(this.used) : OVERFLOW;
  }

  filled(n: number): boolean {
    if (this.used < this.memory.length) this.used += n;
    else this.overflow += n;
    this.onBytes?.(n);
    return true;
  }

  result(): Uint8Array {
    return this.used === this.memory.length ? this.memory : this.memory.subarray(0, this.used);
  }
}

/**
 * Receives a body into `file` from `start`: the socket reads into pooled 1 MiB blocks, each full
 * block is handed to `onBlock` (digests) and written at its position while the next one fills. At
 * most `limit` bytes are written (a range never spills into its neighbour's). Resolves with the
 * bytes that arrived, those past `limit` included, so that the size check refuses an overlong
 * body; a failed write wins over the network error it causes.
 */
export async function receiveIntoFile(
  body: ResponseBody,
  file: TempFile,
  start: number,
  limit: number,
  onBlock?: (bytes: Buffer) => void,
  onBytes?: (n: number) => void,
): Promise<number> {
  const sink = new FileSink(body, file, start, limit, onBlock, onBytes);
  try {
    await body.read(sink);
    sink.flush();
  } finally {
    await sink.settled();
  }
  return sink.bytes;
}

class FileSink implements BodySink {
  private block = blocks.take();
  private used = 0;
  private position: number;
  private writing = 0;
  private paused = false;
  private writeError?: unknown;
  private overflow = 0;
  private readonly drained: Array<() => void> = [];

  constructor(
    private readonly body: ResponseBody,
    private readonly file: TempFile,
    private readonly start: number,
    private readonly limit: number,
    private readonly onBlock?: (bytes: Buffer) => void,
    private readonly onBytes?: (n: number) => void,
  ) {
    this.position = start;
  }

  get bytes(): number {
    return this.position - this.start + this.overflow;
  }

  space(): Uint8Array {
    return this.block.subarray(this.used);
  }

  filled(n: number): boolean {
    this.used += n;
    this.onBytes?.(n);
    if (this.used === this.block.length) this.flush();
    this.paused = this.writing >= BLOCKS_WRITING_PER_SINK;
    return !this.paused;
  }

  /** Writes what the current block holds and starts a fresh one. */
  flush(): void {
    if (this.used === 0) return;
    const writable = Math.max(0, Math.min(this.used, this.start + this.limit - this.position));
    this.overflow += this.used - writable;
    if (writable === 0) {
      this.used = 0;
      return;
    }
    const block = this.block;
    const bytes = block.subarray(0, writable);
    this.block = blocks.take();
    this.used = 0;
    this.onBlock?.(bytes);
    const at = this.position;
    this.position += bytes.length;
    this.writing++;
    this.file.write(bytes, at).then(
      () => this.written(block),
      (err: unknown) => {
        this.writeError ??= err;
        this.body.discard();
        this.written(block);
      },
    );
  }

  /** Waits for every write; throws the first write error. */
  async settled(): Promise<void> {
    while (this.writing > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    blocks.give(this.block);
    if (this.writeError !== undefined) throw this.writeError;
  }

  private written(block: Buffer): void {
    this.writing--;
    blocks.give(block);
    if (this.paused && this.writeError === undefined) {
      this.paused = false;
      this.body.resume();
    }
    for (const wake of this.drained.splice(0)) wake();
  }
}
