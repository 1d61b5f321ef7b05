import { FullJitterBackoff, parseRetryAfter } from './backoff';

const ctx = (attempt: number, error: Error = new Error('x')) => ({ attempt, result: { error }, signal: new AbortController().signal });

describe('FullJitterBackoff', () => {
  it('draws uniformly below base * 2^(attempt-1), capped', () => {
    const top = new FullJitterBackoff(100, 1000, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map((a) => top.next(ctx(a)).duration)).toEqual([99, 199, 399, 799, 999, 999]);
    const bottom = new FullJitterBackoff(100, 1000, () => 0);
    expect(bottom.next(ctx(3)).duration).toBe(0);
  });

  it('takes the server at its word with Retry-After, up to the cap', () => {
    const b = new FullJitterBackoff(100, 5000, () => 0.5);
    expect(b.next(ctx(1, Object.assign(new Error('429'), { retryAfterMs: 2000 }))).duration).toBe(2000);
    expect(b.next(ctx(1, Object.assign(new Error('429'), { retryAfterMs: 60_000 }))).duration).toBe(5000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-23T10:00:00Z');
  it.each([
    ['3', 3000],
    [' 0 ', 0],
    ['Mon, 23 Nov 2026 10:00:05 GMT', 5000],
    ['Mon, 23 Nov 2026 09:00:00 GMT', 0],
    ['soon', undefined],
    [undefined, undefined],
  ])('%s -> %s ms', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});
