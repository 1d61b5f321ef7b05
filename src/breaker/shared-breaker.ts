import { BreakerPhase, BreakerState, BreakerStore } from '../state/state.ports';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  threshold: number;
  cooldownMs: number;
  /** How long a half-open probe may take before another caller may probe instead. */
  probeLeaseMs: number;
  /** How often a waiting caller looks at the state again (another replica may have closed it). */
  pollMs: number;
  /** How long a closed, failure-free state read from the store is trusted without reading it again. */
  cacheMs: number;
}

export interface BreakerTransition {
  name: string;
  from: BreakerPhase;
  to: BreakerPhase;
  failures: number;
}

export interface BreakerClock {
  nowMs(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const initial = (name: string): BreakerState => ({ name, state: 'closed', failures: 0, openedAt: 0, probeUntil: 0, version: 0 });

/**
 * A circuit breaker whose state lives in the BreakerStore, written with compare-and-set, so that
 * replicas sharing a store share one breaker. Closed: calls go through and consecutive failures are
 * counted; at `threshold` it opens. Open: nobody calls; callers wait (their work is neither dropped
 * nor failed) until the cooldown ends. Then exactly one caller wins the half-open probe (a CAS on
 * the version); success closes the breaker for everyone, failure opens it for another cooldown.
 */
export class SharedCircuitBreaker {
  constructor(
    readonly name: string,
    private readonly store: BreakerStore,
    private readonly clock: BreakerClock,
    private readonly options: BreakerOptions,
    private readonly onTransition: (t: BreakerTransition) => void = () => undefined,
  ) {}

  /** The last state read or written here, and when: a closed breaker is not re-read on every call. */
  private known?: { state: BreakerState; at: number };

  async state(): Promise<BreakerState> {
    const state = (await this.store.breakerGet(this.name)) ?? initial(this.name);
    this.known = { state, at: this.clock.nowMs() };
    return state;
  }

  /**
   * The state for a caller about to send: a healthy breaker seen less than `cacheMs` ago is taken
   * as is (another replica's opening is noticed within that delay), anything else is read again.
   */
  private async current(): Promise<BreakerState> {
    const k = this.known;
    if (k && k.state.state === 'closed' && k.state.failures === 0 && this.clock.nowMs() - k.at < this.options.cacheMs) return k.state;
    return this.state();
  }

  /**
   * Runs `call` when the breaker lets it: waits while open or while another caller probes.
   * `isFailure` tells which errors count against the endpoint (a 400 is the request's fault).
   */
  async execute<T>(call: () => Promise<T>, isFailure: (err: unknown) => boolean, signal?: AbortSignal): Promise<T> {
    const probe = await this.admit(signal);
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (isFailure(err)) await this.recordFailure(probe);
      else if (probe) await this.recordSuccess(true);
      throw err;
    }
    await this.recordSuccess(probe);
    return result;
  }

  /** Waits until a call may go; true when this caller holds the half-open probe. */
  private async admit(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      signal?.throwIfAborted();
      const s = await this.current();
      const now = this.clock.nowMs();
      if (s.state === 'closed') return false;
      const probeFree = s.state === 'open' ? now >= s.openedAt + this.options.cooldownMs : now >= s.probeUntil;
      if (probeFree) {
        const next = { ...s, state: 'half-open' as const, probeUntil: now + this.options.probeLeaseMs, version: s.version + 1 };
        if (await this.store.breakerCompareAndSet(next, s.version)) {
          if (s.state === 'open') this.onTransition({ name: this.name, from: 'open', to: 'half-open', failures: s.failures });
          return true;
        }
        continue;
      }
      const wait = s.state === 'open' ? s.openedAt + this.options.cooldownMs - now : s.probeUntil - now;
      await this.clock.sleep(Math.max(1, Math.min(wait, this.options.pollMs)), signal);
    }
  }

  private async recordSuccess(probe: boolean): Promise<void> {
    for (let first = true; ; first = false) {
      const s = first && !probe ? await this.current() : await this.state();
      // Nothing to write in the common case: closed with no failures counted.
      if (s.state === 'closed' && s.failures === 0) return;
      if (s.state !== 'closed' && !probe) return; // a late answer from before the breaker opened
      const next: BreakerState = { ...s, state: 'closed', failures: 0, probeUntil: 0, version: s.version + 1 };
      if (await this.store.breakerCompareAndSet(next, s.version)) {
        this.known = { state: next, at: this.clock.nowMs() };
        if (s.state !== 'closed') this.onTransition({ name: this.name, from: s.state, to: 'closed', failures: 0 });
        return;
      }
    }
  }

  private async recordFailure(probe: boolean): Promise<void> {
    for (;;) {
      const s = await this.state();
      const now = this.clock.nowMs();
      let next: BreakerState;
      if (s.state === 'closed') {
        const failures = s.failures + 1;
        next =
          failures >= this.options.threshold
            ? { ...s, state: 'open', failures, openedAt: now, version: s.version + 1 }
            : { ...s, failures, version: s.version + 1 };
      } else if (probe && s.state === 'half-open') {
        next = { ...s, state: 'open', failures: s.failures + 1, openedAt: now, probeUntil: 0, version: s.version + 1 };
      } else {
        return; // already open: a late failure from before it opened changes nothing
      }
      if (await this.store.breakerCompareAndSet(next, s.version)) {
        this.known = { state: next, at: this.clock.nowMs() };
        if (next.state !== s.state) this.onTransition({ name: this.name, from: s.state, to: next.state, failures: next.failures });
        return;
      }
    }
  }
}
