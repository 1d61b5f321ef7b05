import { Clock } from '../../src/common/clock';

/**
 * A clock that moves with real time plus whatever the test adds, and whose sleeps end only when the
 * test advances it past them: a breaker's cooldown or a lease lasts exactly as long as the test says.
 */
export class ManualClock extends Clock {
  private offsetMs = 0;
  private sleepers: Array<{ until: number; resolve: () => void }> = [];

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const sleeper = { until: this.nowMs() + ms, resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  /** Sleepers waiting on this clock now. */
  get waiting(): number {
    return this.sleepers.length;
  }

  advance(ms: number): void {
    this.offsetMs += ms;
    const now = this.nowMs();
    const due = this.sleepers.filter((s) => s.until <= now);
    this.sleepers = this.sleepers.filter((s) => s.until > now);
    for (const s of due) s.resolve();
  }
}
