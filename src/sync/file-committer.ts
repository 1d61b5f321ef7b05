import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { join } from 'node:path';
import Piscina from 'piscina';

interface CommitTask {
  tmpPath: string;
  target: string;
  data: Uint8Array;
  mtimeMs: number;
}
type CommitResult = { ok: true } | { ok: false; code: string | undefined; message: string };

/** Objects up to this size are committed whole by a worker thread (see file-commit.worker.js). */
export const SMALL_OBJECT_BYTES = 1024 * 1024;

/** Writes small files atomically and durably from worker threads, keeping the event loop free. */
@Injectable()
export class FileCommitter implements OnModuleDestroy {
  private readonly pool = new Piscina<CommitTask, CommitResult>({
    filename: join(__dirname, 'file-commit.worker.js'),
    minThreads: 1,
    maxThreads: 4,
    idleTimeout: 30_000,
    recordTiming: false,
  });

  /**
   * Writes the chunks to `tmpPath`, fsyncs it, sets its mtime and renames it to `target`. The bytes
   * are gathered into one buffer of their own and transferred, not cloned: HTTP chunks are views of
   * larger socket buffers, which structured clone would copy whole.
   */
  async commit(tmpPath: string, target: string, chunks: readonly Uint8Array[], size: number, mtime: Date): Promise<void> {
    const data = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      data.set(chunk, offset);
      offset += chunk.length;
    }
    const result = await this.pool.run({ tmpPath, target, data, mtimeMs: mtime.getTime() }, { transferList: [data.buffer] });
    if (!result.ok) throw Object.assign(new Error(result.message), { code: result.code });
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool.destroy();
  }
}
