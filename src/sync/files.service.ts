import { Injectable } from '@nestjs/common';
import { S3Repository } from '../aws/s3.repository';
import { BadRequestError } from '../common/errors';
import { scopedPrefix } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import { ManifestStore } from '../state/manifest.store';
import type { FileEntryDto } from './sync.dto';

export interface FilePage {
  files: FileEntryDto[];
  nextCursor: string | null;
}

/** Paginated listings of the bucket (S3's continuation token) and of the mirror (the last key seen). */
@Injectable()
export class FilesService {
  constructor(
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
    private readonly manifest: ManifestStore,
  ) {}

  async list(source: 's3' | 'local', prefix: string | undefined, limit: number, cursor: string | undefined): Promise<FilePage> {
    const effectivePrefix = scopedPrefix(prefix, this.config.s3.prefix);
    if (source === 's3') {
      const page = await this.s3.listPage(effectivePrefix, cursor, limit);
      return { files: page.objects, nextCursor: page.nextToken ?? null };
    }
    const after = cursor === undefined ? '' : decodeCursor(cursor);
    const entries = this.manifest.page(effectivePrefix, after, limit + 1);
    const files = entries.slice(0, limit).map((e) => ({
      key: e.key,
      size: e.size,
      etag: e.etag,
      lastModified: e.lastModified,
      verifiedBy: e.verifiedBy,
      syncedAt: e.syncedAt,
      localPath: e.localPath,
    }));
    const nextCursor = entries.length > limit ? Buffer.from(files[files.length - 1].key).toString('base64url') : null;
    return { files, nextCursor };
  }
}

function decodeCursor(cursor: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(cursor)) throw new BadRequestError('cursor: not a cursor returned by this API', { parameter: 'cursor' });
  return Buffer.from(cursor, 'base64url').toString('utf8');
}
