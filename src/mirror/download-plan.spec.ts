import { SMALL_OBJECT_BYTES } from './file.committer';
import { fetchStrategy, planRanges, wholeBodySink } from './download-plan';

describe('download plan', () => {
  it('fetches objects below the multipart threshold whole and the rest in ranges', () => {
    expect(fetchStrategy(0, 100)).toBe('whole');
    expect(fetchStrategy(99, 100)).toBe('whole');
    expect(fetchStrategy(100, 100)).toBe('ranged');
  });

  it('receives small whole objects in memory and larger ones into a file', () => {
    expect(wholeBodySink(SMALL_OBJECT_BYTES)).toBe('memory');
    expect(wholeBodySink(SMALL_OBJECT_BYTES + 1)).toBe('file');
  });

  it('covers every byte once, the last range shorter', () => {
    expect(planRanges(10, 4)).toEqual([
      { start: 0, end: 3 },
      { start: 4, end: 7 },
      { start: 8, end: 9 },
    ]);
    expect(planRanges(8, 4)).toEqual([
      { start: 0, end: 3 },
      { start: 4, end: 7 },
    ]);
    expect(planRanges(0, 4)).toEqual([]);
  });

  it('refuses a chunk size that would never advance', () => {
    expect(() => planRanges(10, 0)).toThrow(RangeError);
  });
});
