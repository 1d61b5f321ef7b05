/**
 * The unit of work is one object version. Everything recorded about it (manifest row, ledger row,
 * idempotency claim, batch ids `fileId#batchNo`, bundle membership) hangs off its fileId, built here
 * and nowhere else, so that a replay or a second replica can tell what was already done.
 */
import type { ListedObject } from '../aws/list-parser';
import type { VerificationMethod } from '../state/manifest.store';

/** An object version as S3 describes it (a listing entry, or a notification's key, ETag and size). */
export type RemoteObject = ListedObject;

/** The regular file a key maps to on disk. */
export interface LocalFile {
  size: number;
  mtimeMs: number;
}

/** `bucket/key@etag`. */
export function fileIdOf(bucket: string, key: string, etag: string): string {
  return `${bucket}/${key}@${etag}`;
}

/** Published once a downloaded version is verified, renamed into place and in the manifest. */
export interface FileCommitted {
  fileId: string;
  key: string;
  etag: string;
  bytes: number;
  verifiedBy: VerificationMethod;
}
