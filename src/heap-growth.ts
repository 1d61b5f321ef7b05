import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived the last full collection. By default
 * it grows to up to four times that while collections are cheap, and a long sync promotes short-
 * lived download state at tens of MB a second, so the heap climbed by ~150 MB over a sync of a
 * million objects before anything was collected; memory followed the bucket's size, not what the
 * service holds (about 40 MB). Full sync of 1,000,000 objects (`SCALE_SIZES=1000000 node
 * bench/scale.mjs`, interleaved): V8's rule 359 MiB peak RSS; 50% 217-219 MiB at 159-163 us of
 * CPU an object; 25% 205-206 MiB at 177-180 us. 25% holds the full sync within 30 MiB of the
 * 5,000-object figure (179 MiB), for about 10% more CPU an object.
 */
const HEAP_GROWING_PERCENT = 25;

const GROWING_FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * Sets the heap's growth for this process and its worker threads, unless Node was given its own
 * (in its arguments or NODE_OPTIONS, Node's setting rather than the service's): an operator's
 * choice wins. Returns whether it set it.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if ([...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => GROWING_FLAG.test(arg))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
