import { isAbsolute, relative, resolve, sep } from 'node:path';
import { BadRequestError } from './errors';
import { KeyFilter } from './key-filter';

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
  // The segments are checked above (no "", ".", "..", "\\" or leading "/"), so the key appends to
  // the root as it is (path.join would find nothing to normalise, at a few microseconds a key);
  // the containment check stays as a second line of defence.
  const absRoot = resolvedRoot(root);
  const absPath = absRoot + sep + (sep === '/' ? key : key.split('/').join(sep));
  if (!absPath.startsWith(absRoot + sep)) return { kind: 'refused', key, reason: 'resolves outside the mirror directory' };
  return { kind: 'file', key, relPath: key, absPath };
}

let lastRoot: string | undefined;
let lastResolvedRoot = '';
/** The mirror root is one directory for the life of the process: resolved once, not once a key. */
function resolvedRoot(root: string): string {
  if (root !== lastRoot) {
    lastResolvedRoot = resolve(root);
    lastRoot = root;
  }
  return lastResolvedRoot;
}

/** Whether `path` lies below `root` (both absolute; the root itself does not count). */
export function isStrictlyInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function refusal(key: string): string | 'folder-marker' | undefined {
  if (LONE_SURROGATE.test(key)) return 'not valid Unicode (a lone surrogate): no file name can hold it';
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
    if (hasControlCharacter(segment)) return 'contains a control character';
  }
  if (segments[segments.length - 1].endsWith(TEMP_SUFFIX)) return `ends with the reserved suffix ${TEMP_SUFFIX}`;
  return undefined;
}

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20 || s.charCodeAt(i) === 0x7f) return true;
  return false;
}

function isBadSegment(segment: string): boolean {
  return segment === '' || segment === '.' || segment === '..';
}

/** What the service does with a key it was told of, before anything is fetched. */
export type Admission =
  | { kind: 'file'; mapping: Extract<KeyMapping, { kind: 'file' }> }
  | { kind: 'ignored'; reason: string }
  /** Filtered out by SYNC_INCLUDE / SYNC_EXCLUDE (or a run's own filter): neither fetched nor deleted. */
  | { kind: 'excluded'; reason: string }
  | { kind: 'refused'; reason: string };

export interface MirrorScope {
  /** The bucket that event notifications name: an event for another one is not this mirror's. */
  eventBucket: string;
  /** S3_PREFIX: keys outside it are not this service's. */
  prefix: string;
}

/**
 * The prefix a request may sync or list: the one asked for, or all of S3_PREFIX when none (or an
 * empty one) is; one outside S3_PREFIX is refused, since the service never shows or fetches what
 * it is configured not to mirror.
 */
export function scopedPrefix(requested: string | undefined, base: string): string {
  const prefix = requested || base;
  if (!prefix.startsWith(base)) throw new BadRequestError(`prefix must lie under S3_PREFIX "${base}"`, { parameter: 'prefix' });
  return prefix;
}

/**
 * The one admission rule, for listings and notifications alike: another bucket's key or one outside
 * S3_PREFIX is ignored, a folder marker is ignored (nothing to write), a key the filter rejects is
 * excluded, an unsafe key is refused (reported), anything else maps to its file.
 */
export function admitKey(
  root: string,
  key: string,
  scope: MirrorScope,
  eventBucket?: string,
  filter: KeyFilter = KeyFilter.all,
): Admission {
  if (eventBucket !== undefined && eventBucket !== scope.eventBucket) {
    return { kind: 'ignored', reason: `event for bucket "${eventBucket}"; this service applies events for "${scope.eventBucket}"` };
  }
  if (!key.startsWith(scope.prefix)) return { kind: 'ignored', reason: `key is outside S3_PREFIX "${scope.prefix}"` };
  const mapping = mapKey(root, key);
  if (mapping.kind === 'folder-marker') return { kind: 'ignored', reason: 'folder marker (key ends with "/"): nothing to mirror' };
  const excluded = filter.rejects(key);
  if (excluded) return { kind: 'excluded', reason: excluded };
  if (mapping.kind === 'refused') return { kind: 'refused', reason: mapping.reason };
  return { kind: 'file', mapping };
}
