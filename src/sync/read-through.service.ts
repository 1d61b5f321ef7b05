import { Injectable } from '@nestjs/common';
import { ARCHIVED_ON_GET, isArchivedObjectError } from '../aws/s3-errors';
import { S3Repository } from '../aws/s3.repository';
import { NotFoundError, UnsafeKeyError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { fileIdOf } from '../mirror/file-version';
import { MirrorService } from '../mirror/mirror.service';
import type { ManifestEntry } from '../state/manifest.store';
import { planObject } from './sync-planner';
import { PRIORITY, WorkQueue } from './work.queue';

/**
 * Replicas share the ledger, not their disks: a replica asked for a file it does not hold (a
 * download, or a delivery it took over) fetches it first through the mirror's verified path, in
 * the key's turn in the work queue, under the same admission and size rules as a sync. With one
 * process (the SQLite backend) the mirror is the whole truth and nothing is fetched here.
 */
@Injectable()
export class ReadThrough {
  constructor(
    private readonly config: AppConfig,
    private readonly mirror: MirrorService,
    private readonly work: WorkQueue,
    private readonly s3: S3Repository,
  ) {}

  get enabled(): boolean {
    return this.config.state.backend === 'dynamodb';
  }

  /** See MirrorService.openForRead; NotFoundError when the bucket does not have it (or that version) either. */
  async open(key: string, expected?: { fileId: string }): Promise<{ absPath: string; entry: ManifestEntry }> {
    try {
      return await this.mirror.openForRead(key, expected);
    } catch (err) {
      if (!this.enabled || !(err instanceof NotFoundError)) throw err;
    }
    const admission = this.mirror.admit(key);
    if (admission.kind === 'refused') throw new UnsafeKeyError(key, admission.reason);
    if (admission.kind === 'ignored' || admission.kind === 'excluded')
      throw new NotFoundError(`${key} is not mirrored: ${admission.reason}`);
    const head = await this.s3.headObject(key);
    if (!head) throw new NotFoundError(`${key} is in neither the mirror nor the bucket`);
    if (expected && fileIdOf(this.config.s3.bucket, key, head.etag) !== expected.fileId) {
      throw new NotFoundError(`superseded: the bucket holds another version of ${key} now`);
    }
    const remote = { key, etag: head.etag, size: head.size, lastModified: head.lastModified };
    await this.work.run(
      key,
      async () => {
        const decision = planObject(remote, this.mirror.committedVersion(key), this.mirror.localFile(admission.mapping), {
          maxFileBytes: this.config.sync.maxFileBytes,
          skipExisting: false,
        });
        if (decision.action === 'too-large') throw new NotFoundError(`${key} is not mirrored: ${decision.reason}`);
        if (decision.action !== 'download') return;
        try {
          await this.mirror.download(remote);
        } catch (err) {
          if (isArchivedObjectError(err)) throw new NotFoundError(`${key} is not mirrored: ${ARCHIVED_ON_GET}`);
          throw err;
        }
      },
      PRIORITY.event,
    );
    return this.mirror.openForRead(key, expected);
  }
}
