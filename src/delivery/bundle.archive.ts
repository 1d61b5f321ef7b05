import { Injectable } from '@nestjs/common';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { S3Repository } from '../aws/s3.repository';
import { AppConfig } from '../config/app-config';
import type { BundleRecord } from '../state/state.ports';
import type { Spooled } from './bundle.builder';

/** The archive bucket: every bundle is stored there, under a dated key, before it is posted. */
@Injectable()
export class BundleArchive {
  constructor(
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
  ) {}

  /** `ARCHIVE_PREFIX/YYYY/MM/DD/<bundle id>.tar.gz` (or `.gz` for concatenated bundles). */
  keyFor(bundle: BundleRecord): string {
    const day = bundle.createdAt.toISOString().slice(0, 10).replace(/-/g, '/');
    return `${this.config.bundles.archivePrefix}${day}/${bundle.id}.${this.config.bundles.format === 'tar' ? 'tar.gz' : 'gz'}`;
  }

  async store(key: string, spooled: Spooled): Promise<void> {
    const body = spooled.kind === 'memory' ? spooled.data : createReadStream(spooled.path);
    await this.s3.upload(this.config.bundles.archiveBucket!, key, body, 'application/gzip');
  }

  /** The archived bundle, read back (after a restart, when the spool is gone). */
  open(key: string): Promise<{ body: Buffer | Readable; length: number }> {
    return this.s3.openObject(this.config.bundles.archiveBucket!, key);
  }
}
