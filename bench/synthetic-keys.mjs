// The key space of bench/synthetic-s3.mjs, shared with bench/scale.mjs (which lays down copies of it).
// Key i is `dDDDD/NNN.json`: 1,000 keys a folder and fixed-width numbers, so key order is index
// order and any key or listing position is found by binary search. Its body is a fixed random block
// with i written at its head, cut to a size derived from i: nothing is stored, and the ETag (the
// body's MD5) is computed when asked for.
import { hash } from 'node:crypto';

const PER_FOLDER = 1000;

export function keySpace(keys, seedBlock) {
  const folderDigits = Math.max(4, String(Math.ceil(keys / PER_FOLDER) - 1).length);
  const keyOf = (i) => `d${String(Math.floor(i / PER_FOLDER)).padStart(folderDigits, '0')}/${String(i % PER_FOLDER).padStart(3, '0')}.json`;
  const sizeOf = (i) => 200 + ((i * 7919) % 824);
  const bodyOf = (i) => {
    const body = Buffer.from(seedBlock.subarray(0, sizeOf(i)));
    body.write(String(i).padStart(12, '0'), 0, 'latin1');
    return body;
  };
  return {
    keys,
    keyOf,
    sizeOf,
    bodyOf,
    md5Of: (i) => hash('md5', bodyOf(i)),
    indexOf(key) {
      const m = /^d(\d+)\/(\d{3})\.json$/.exec(key);
      if (!m) return -1;
      const i = Number(m[1]) * PER_FOLDER + Number(m[2]);
      return i < keys && keyOf(i) === key ? i : -1;
    },
    /** The first index whose key is > `s` (>= with `inclusive`). */
    firstAfter(s, inclusive = false) {
      let lo = 0;
      let hi = keys;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const k = keyOf(mid);
        if (k < s || (!inclusive && k === s)) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    },
  };
}
