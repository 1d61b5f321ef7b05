import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived the last full collection. By default
 * it grows to up to four times that while collections are cheap, and a long sync promotes short-
 * lived download state at tens of MB a second, so the heap climbed by ~150 MB over a sync of a
 * million objects before anything was collected; memory followed the bucket's size, not what the
 * service holds (about 40 MB). At 50% the peak RSS of a full sync of 300,000 objects went from
 * 337-344 MiB to 227-230 MiB with its CPU an object within the run-to-run spread (175-222 us,
 * `SCALE_SIZES=300000 node bench/scale.mjs`, interleaved).
 */
const HEAP_GROWING_PERCENT = 50;

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
