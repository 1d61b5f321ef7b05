import { isAbsolute, relative, resolve, sep } from 'node:path';

/**
 * S3 key <-> local path. The only place that decides what may be written or served: every write
 * and every download goes through `mapKey`, so no key, however hostile, reaches a path outside
 * the mirror root.
 */
export type KeyMapping =
  | { kind: 'file'; key: string; relPath: string; absPath: string }
  | { kind: 'folder-marker'; key: string }
  | { kind: 'refused'; key: string; reason: string };

/** Most filesystems (ext4, xfs, tmpfs, APFS) cap one name at 255 bytes. */
const MAX_SEGMENT_BYTES = 255;
/** PATH_MAX on Linux, minus room for the mirror root. */
const MAX_KEY_BYTES = 3800;
/** Temporary files the mirror writes while downloading; a key must not be mistaken for one. */
export const TEMP_SUFFIX = '.s3sync-partial';

export function mapKey(root: string, key: string): KeyMapping {
  const reason = refusal(key);
  if (reason === 'folder-marker') return { kind: 'folder-marker', key };
  if (reason) return { kind: 'refused', key, reason };
  const absRoot = resolve(root);
  const absPath = resolve(absRoot, ...key.split('/'));
  const rel = relative(absRoot, absPath);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    return { kind: 'refused', key, reason: 'resolves outside the mirror directory' };
  }
  return { kind: 'file', key, relPath: rel.split(sep).join('/'), absPath };
}

function refusal(key: string): string | 'folder-marker' | undefined {
  if (key.length === 0) return 'empty key';
  if (key.includes('\0')) return 'contains a NUL byte';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.startsWith('/')) return 'absolute path';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  if (key.endsWith('/')) {
    return key.slice(0, -1).split('/').some(isBadSegment) ? 'invalid path segment' : 'folder-marker';
  }
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') return 'empty path segment (//)';
    if (segment === '.' || segment === '..') return `"${segment}" path segment`;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
    if (/[\x00-\x1f]/.test(segment)) return 'contains a control character';
  }
  if (segments[segments.length - 1].endsWith(TEMP_SUFFIX)) return `ends with the reserved suffix ${TEMP_SUFFIX}`;
  return undefined;
}

function isBadSegment(segment: string): boolean {
  return segment === '' || segment === '.' || segment === '..';
}

/** The key a mirrored file was written from (inverse of mapKey for accepted keys). */
export function localRelPathToKey(relPath: string): string {
  return relPath.split(sep).join('/');
}

/** Whether `key` lies under `prefix` (an empty prefix covers the whole bucket). */
export function isUnderPrefix(key: string, prefix: string): boolean {
  return key.startsWith(prefix);
}

/**
 * Compares keys the way S3 lists them: by their UTF-8 bytes. JavaScript's `<` compares UTF-16 code
 * units, which orders characters above U+FFFF differently, and `localeCompare` ignores case.
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
