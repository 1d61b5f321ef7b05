import { setTimeout as sleepFor } from 'node:timers/promises';

/** Time source and waiting; injected so that tests control both instead of sleeping. */
export abstract class Clock {
  abstract now(): Date;
  nowMs(): number {
    return this.now().getTime();
  }
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when it aborts. */
  abstract sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
  override nowMs(): number {
    return Date.now();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepFor(ms, undefined, { signal });
  }
}
