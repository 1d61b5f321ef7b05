import type { BundleMember } from '../state/state.ports';
import { retryDelayMs, sealingDecision } from './bundle-policy';

const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const member = (n: number, size: number, ageMs = 0): BundleMember => ({
  fileId: `b/f${n}@e`,
  key: `f${n}`,
  size,
  addedAt: new Date(T0 - ageMs),
});
const limits = { maxFiles: 3, maxBytes: 100, maxAgeMs: 60_000 };
const ids = (d: ReturnType<typeof sealingDecision>): string[] => (d.seal ? d.members.map((m) => m.key) : []);

describe('bundle sealing policy', () => {
  it('seals nothing when nothing waits', () => {
    expect(sealingDecision([], limits, T0)).toEqual({ seal: false });
  });

  it('waits while the bundle is neither full nor old', () => {
    expect(sealingDecision([member(1, 10, 59_999), member(2, 10)], limits, T0)).toEqual({ seal: false });
  });

  it('seals by age once the oldest file has waited the maximum', () => {
    const d = sealingDecision([member(1, 10, 60_000), member(2, 10)], limits, T0);
    expect(d).toMatchObject({ seal: true, reason: 'age', bytes: 20 });
    expect(ids(d)).toEqual(['f1', 'f2']);
  });

  it('seals by count at the file limit, leaving the rest for the next bundle', () => {
    const d = sealingDecision(
      [1, 2, 3, 4].map((n) => member(n, 1)),
      limits,
      T0,
    );
    expect(d).toMatchObject({ seal: true, reason: 'size' });
    expect(ids(d)).toEqual(['f1', 'f2', 'f3']);
  });

  it('seals by bytes before a file that would pass the byte limit', () => {
    const d = sealingDecision([member(1, 60), member(2, 30), member(3, 20)], limits, T0);
    expect(d).toMatchObject({ seal: true, reason: 'size', bytes: 90 });
    expect(ids(d)).toEqual(['f1', 'f2']);
  });

  it('seals at exactly the byte limit', () => {
    expect(sealingDecision([member(1, 60), member(2, 40)], limits, T0)).toMatchObject({ seal: true, reason: 'size', bytes: 100 });
  });

  it('lets a file larger than the byte limit travel alone', () => {
    const d = sealingDecision([member(1, 500), member(2, 1)], limits, T0);
    expect(d).toMatchObject({ seal: true, reason: 'size', bytes: 500 });
    expect(ids(d)).toEqual(['f1']);
  });
});

describe('bundle retry delay', () => {
  it('doubles from the base with each attempt, up to the maximum', () => {
    expect([0, 1, 2, 3].map((n) => retryDelayMs(n, 100, 1000))).toEqual([100, 200, 400, 800]);
    expect(retryDelayMs(4, 100, 1000)).toBe(1000);
    expect(retryDelayMs(1000, 100, 1000)).toBe(1000);
  });
});
