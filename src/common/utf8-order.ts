/**
 * Orders strings as their UTF-8 bytes (code points) do, as S3 and SQLite do. JavaScript's `<`
 * compares UTF-16 units, which puts U+E000..U+FFFF after the surrogate pairs of higher code points.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates stand for U+10000 and above: ranked after U+E000..U+FFFF, which move down.
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
