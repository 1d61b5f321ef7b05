/**
 * How an object is fetched, decided from its size alone (pure, see download-plan.spec.ts):
 * - `ranged`: from MULTIPART_THRESHOLD_MB on, parallel ranged GETs into a file truncated to the
 *   object's size, with the ranges on the object's own part boundaries when they are known, so that
 *   the multipart ETag can be recomputed part by part;
 * - `whole` into memory, up to SMALL_OBJECT_BYTES: the bytes go to a commit worker without a copy;
 * - `whole` into a temporary file above that.
 */
import { SMALL_OBJECT_BYTES } from './file.committer';

export type FetchStrategy = 'ranged' | 'whole';
export type WholeBodySink = 'memory' | 'file';

export interface ByteRange {
  start: number;
  /** Inclusive, as in an HTTP Range header. */
  end: number;
}

export function fetchStrategy(size: number, multipartThresholdBytes: number): FetchStrategy {
  return size >= multipartThresholdBytes ? 'ranged' : 'whole';
}

export function wholeBodySink(size: number): WholeBodySink {
  return size > SMALL_OBJECT_BYTES ? 'file' : 'memory';
}

/** Consecutive ranges of `chunkBytes` covering `size` bytes (the last one shorter). */
export function planRanges(size: number, chunkBytes: number): ByteRange[] {
  if (chunkBytes <= 0) throw new RangeError('chunkBytes must be positive');
  const ranges: ByteRange[] = [];
  for (let start = 0; start < size; start += chunkBytes) ranges.push({ start, end: Math.min(size, start + chunkBytes) - 1 });
  return ranges;
}
