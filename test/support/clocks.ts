import { Clock } from '../../src/common/clock';

/** Always the same instant; a sleep ends at once. */
export class FixedClock extends Clock {
  constructor(private readonly at: Date = new Date('2026-11-23T10:00:00Z')) {
    super();
  }
  now(): Date {
    return this.at;
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
}

/** Whatever time the test sets (`ms`); a sleep ends at once. */
export class SettableClock extends Clock {
  ms = Date.UTC(2026, 10, 23, 10);
  now(): Date {
    return new Date(this.ms);
  }
  sleep(_ms: number): Promise<void> {
    return Promise.resolve();
  }
}

/** A sleep ends at once and moves the time on by what it waited. */
export class SteppingClock extends SettableClock {
  override sleep(ms: number): Promise<void> {
    this.ms += ms;
    return Promise.resolve();
  }
}
