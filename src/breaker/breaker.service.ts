import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { BreakerState, BreakerStore } from '../state/state.ports';
import { BreakerClock, SharedCircuitBreaker } from './shared-breaker';

/** One shared circuit breaker per downstream endpoint, every transition logged. */
@Injectable()
export class BreakerService {
  private readonly logger = new Logger('CircuitBreaker');
  private readonly breakers = new Map<string, SharedCircuitBreaker>();
  private readonly byUrl = new Map<string, SharedCircuitBreaker>();
  private readonly clock: BreakerClock;

  constructor(
    private readonly config: AppConfig,
    private readonly store: BreakerStore,
    clock: Clock,
  ) {
    this.clock = clock;
  }

  /** The breaker of an endpoint, named by its origin and path (never its query or credentials). */
  for(url: string): SharedCircuitBreaker {
    const known = this.byUrl.get(url);
    if (known) return known;
    const u = new URL(url);
    const name = `${u.protocol}//${u.host}${u.pathname}`;
    let breaker = this.breakers.get(name);
    if (!breaker) {
      const { breakerThreshold, breakerCooldownMs, timeoutMs } = this.config.delivery;
      breaker = new SharedCircuitBreaker(
        name,
        this.store,
        this.clock,
        {
          threshold: breakerThreshold,
          cooldownMs: breakerCooldownMs,
          probeLeaseMs: timeoutMs * 2,
          pollMs: Math.min(1000, breakerCooldownMs),
          cacheMs: 100,
        },
        (t) => this.logger.warn(t, `circuit ${t.from} -> ${t.to}`),
      );
      this.breakers.set(name, breaker);
    }
    this.byUrl.set(url, breaker);
    return breaker;
  }

  async states(): Promise<BreakerState[]> {
    return Promise.all([...this.breakers.values()].map((b) => b.state()));
  }
}
