import { Injectable, Logger } from '@nestjs/common';
import { createReadStream, createWriteStream, mkdirSync, WriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { AppConfig } from '../config/app-config';
import { MirrorService } from '../mirror/mirror.service';
import type { BundleMember } from '../state/state.ports';

/** Where a built bundle waits until it is posted: memory below the threshold, a file above it. */
export type Spooled = { kind: 'memory'; data: Buffer } | { kind: 'file'; path: string; length: number };

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
 * Builds a bundle from the mirror's files: a tar of the members (names and mtimes kept) or their
 * bytes one after the other, gzip-compressed, held in memory up to BUNDLE_SPOOL_MEMORY_MB and in a
 * file under STATE_DIR beyond. A member whose version the mirror no longer holds is left out.
 */
@Injectable()
export class BundleBuilder {
  private readonly logger = new Logger(BundleBuilder.name);
  private readonly spoolDir: string;

  constructor(
    private readonly config: AppConfig,
    private readonly mirror: MirrorService,
  ) {
    this.spoolDir = join(config.state.dir, 'bundle-spool');
  }

  async build(bundleId: string, members: BundleMember[]): Promise<Spooled> {
    mkdirSync(this.spoolDir, { recursive: true });
    const spool = new Spool(this.config.bundles.spoolMemoryBytes, join(this.spoolDir, `${bundleId}.gz`));
    await pipeline(Readable.from(this.content(members)), createGzip(), spool);
    return spool.result();
  }

  async discard(spooled: Spooled | undefined): Promise<void> {
    if (spooled?.kind === 'file') await rm(spooled.path, { force: true });
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
}
