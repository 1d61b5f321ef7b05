/**
 * Pure decisions of a sync: what to do with each listed object, and whether the deletions a run
 * found may go ahead. No I/O here; the service feeds it what it read.
 */
import type { LocalFile, RemoteObject } from '../mirror/file-version';

export interface CommittedFile {
  etag: string;
  size: number;
}

export interface PlanOptions {
  /** 0 = no limit. */
  maxFileBytes: number;
  /** Adopt a local file of equal size and mtime when the manifest has no row (rclone's default check). */
  skipExisting: boolean;
}

export type Decision =
  | { action: 'download'; reason: 'new' | 'changed' | 'missing-locally' | 'local-differs' }
  | { action: 'skip'; reason: 'unchanged' }
  | { action: 'adopt'; reason: 'same size and modification time' }
  | { action: 'too-large'; reason: string }
  /** Would be downloaded, but its storage class keeps it unreadable until restored: no GET is sent. */
  | { action: 'archived'; reason: string };

/** Storage classes whose objects must be restored before a GET can read them (Glacier Instant Retrieval can be read at once). */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** Why the object cannot be read now, or undefined when a GET would succeed. */
export function archivedReason(remote: Pick<RemoteObject, 'storageClass' | 'restore'>): string | undefined {
  if (!remote.storageClass || !ARCHIVE_CLASSES.has(remote.storageClass) || remote.restore === 'restored') return undefined;
  return remote.restore === 'restoring'
    ? `archived in ${remote.storageClass}, restore in progress: fetched once it completes`
    : `archived in ${remote.storageClass}: restore it (RestoreObject) to mirror it`;
}

/** S3 keeps LastModified to the second; filesystems may round differently. */
export const MTIME_TOLERANCE_MS = 1000;

export function planObject(
  remote: RemoteObject,
  committed: CommittedFile | undefined,
  local: LocalFile | undefined,
  options: PlanOptions,
): Decision {
  const decision = planFromVersions(remote, committed, local, options);
  if (decision.action !== 'download') return decision;
  // A mirrored file whose object moved to Glacier is unchanged (same ETag) and stays; only a fetch is impossible.
  const archived = archivedReason(remote);
  return archived ? { action: 'archived', reason: archived } : decision;
}

function planFromVersions(
  remote: RemoteObject,
  committed: CommittedFile | undefined,
  local: LocalFile | undefined,
  options: PlanOptions,
): Decision {
  if (options.maxFileBytes > 0 && remote.size > options.maxFileBytes) {
    return { action: 'too-large', reason: `${remote.size} bytes exceeds MAX_FILE_SIZE_MB (${options.maxFileBytes} bytes)` };
  }
  if (committed) {
    if (committed.etag !== remote.etag || committed.size !== remote.size) return { action: 'download', reason: 'changed' };
    if (!local) return { action: 'download', reason: 'missing-locally' };
    if (local.size !== remote.size) return { action: 'download', reason: 'local-differs' };
    return { action: 'skip', reason: 'unchanged' };
  }
  if (
    options.skipExisting &&
    local &&
    local.size === remote.size &&
    Math.abs(local.mtimeMs - remote.lastModified.getTime()) < MTIME_TOLERANCE_MS
  ) {
    return { action: 'adopt', reason: 'same size and modification time' };
  }
  return { action: 'download', reason: 'new' };
}

export interface DeleteGuardInput {
  /** Files the run would delete. */
  toDelete: number;
  /** Files the manifest holds under the run's prefix before the run. */
  mirrored: number;
  /** -1 = no limit. */
  maxDelete: number;
  /** The caller explicitly accepts emptying the mirror (e.g. the bucket really was emptied). */
  allowDeleteAll: boolean;
}

/** Why the deletions must not happen, or undefined when they may. */
export function deleteGuard(input: DeleteGuardInput): string | undefined {
  const { toDelete, mirrored, maxDelete, allowDeleteAll } = input;
  if (toDelete === 0) return undefined;
  if (maxDelete >= 0 && toDelete > maxDelete) {
    return `would delete ${toDelete} files, more than MAX_DELETE (${maxDelete}); nothing was deleted`;
  }
  if (toDelete >= mirrored && !allowDeleteAll) {
    return `would delete every mirrored file (${toDelete}), as after an empty or failed listing; nothing was deleted (pass allowDeleteAll=true if this is intended)`;
  }
  return undefined;
}
