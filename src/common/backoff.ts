/**
 * Retry delays: of delivery, as a cockatiel backoff: exponential with full jitter (AWS's
 * "full jitter": a uniform draw between 0 and min(cap, base * 2^attempt)), except that a server
 * which says when to come back (429 or 503 with Retry-After) is taken at its word, up to the cap.
 */
import type { IBackoff, IBackoffFactory, IRetryBackoffContext } from 'cockatiel';

/** An error that carries the server's Retry-After, in milliseconds. */
export interface RetryAfterHint {
  retryAfterMs?: number;
}

export class FullJitterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const hint = 'error' in context.result ? (context.result.error as Error & RetryAfterHint).retryAfterMs : undefined;
    const duration =
      hint !== undefined ? Math.min(this.capMs, hint) : fullJitterDelayMs(context.attempt, this.baseMs, this.capMs, this.random);
    return { duration, next: (c) => this.next(c) };
  }
}

/** The delay before retry number `attempt` (1 for the first): a uniform draw in [0, min(cap, base * 2^(attempt-1))). */
export function fullJitterDelayMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
}

/** Retry-After as seconds or an HTTP date, in milliseconds from `nowMs`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
