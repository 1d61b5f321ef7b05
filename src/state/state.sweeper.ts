import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { AppConfig } from '../config/app-config';
import { ManifestStore } from './manifest.store';
import { SqliteStateStore } from './sqlite/sqlite.state-store';

const SWEEP_EVERY_MS = 60 * 60_000;

/**
 * Keeps the SQLite state from growing forever: once at start and every hour, rows past their window
 * go (DynamoDB's TTL does the same for the shared state when STATE_BACKEND=dynamodb).
 */
@Injectable()
export class StateSweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(StateSweeper.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly sqlite: SqliteStateStore,
    private readonly manifest: ManifestStore,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    const sweep = (): void =>
      detach(
        Promise.resolve().then(() => this.sweep()),
        this.logger,
        'state sweep failed',
      );
    sweep();
    this.timer = setInterval(sweep, SWEEP_EVERY_MS);
    this.timer.unref();
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  sweep(): Record<string, number> {
    const now = this.clock.nowMs();
    const ttl = this.config.state.statusTtlMs;
    const removed = {
      sequencers: this.manifest.sweepSequencers(now - ttl),
      ...(this.config.state.backend === 'sqlite' ? this.sqlite.sweepShared(now, ttl) : {}),
    };
    if (Object.values(removed).some((n) => n > 0)) this.logger.log(removed, 'expired state removed');
    return removed;
  }
}
