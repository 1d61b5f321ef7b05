import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { ConflictError, errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { ReplicaIdentity } from '../state/local-values.service';
import { LeaseStore, RunTrigger } from '../state/state.ports';
import { SyncService } from './sync.service';

const JOB = 'periodic-sync';
/** The lease every replica asks for at each tick: whoever holds it runs the scheduled syncs. */
export const SCHEDULE_LEASE = 'scheduled-sync';
/** setTimeout's limit (about 24.8 days); a longer interval is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_LEASE_MS = 5_000;

/**
 * Periodic full syncs: SYNC_CRON when set, else every SYNC_INTERVAL_HOURS. A tick never overlaps a
 * running sync, and across replicas the schedule belongs to the holder of a lease: it is renewed at
 * every tick and while a run lasts, and lasts one and a half periods, so that another replica takes
 * the schedule over within about two periods once the holder is gone.
 */
@Injectable()
export class SyncScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SyncScheduler.name);
  private leaseMs = MIN_LEASE_MS;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly registry: SchedulerRegistry,
    private readonly sync: SyncService,
    private readonly leases: LeaseStore,
    private readonly replica: ReplicaIdentity,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    const { periodic, cron, intervalHours, onStart } = this.config.sync;
    if (periodic) {
      if (cron) {
        const job = CronJob.from({ cronTime: cron, onTick: () => this.tick('schedule'), start: true, waitForCompletion: true });
        this.registry.addCronJob(JOB, job);
        const [first, second] = job.nextDates(2).map((d) => d.toMillis());
        this.leaseMs = Math.max(MIN_LEASE_MS, 1.5 * (second - first));
        this.logger.log({ cron, next: job.nextDate().toISO() }, 'periodic sync scheduled');
      } else {
        const ms = Math.round(intervalHours * 3_600_000);
        this.leaseMs = Math.max(MIN_LEASE_MS, 1.5 * ms);
        this.every(ms, () => detach(this.tick('schedule'), this.logger, 'periodic sync failed'));
        this.logger.log({ everyHours: intervalHours }, 'periodic sync scheduled');
      }
    }
    if (onStart) detach(this.tick('startup'), this.logger, 'sync at start-up failed');
  }

  beforeApplicationShutdown(): void {
    clearTimeout(this.timer);
  }

  /** Calls `task` every `ms`, however long: Node fires a longer setInterval at once, then every millisecond. */
  private every(ms: number, task: () => void): void {
    let remaining = ms;
    const step = (): void => {
      this.timer = setTimeout(
        () => {
          remaining -= Math.min(remaining, MAX_TIMER_MS);
          if (remaining > 0) return step();
          remaining = ms;
          task();
          step();
        },
        Math.min(remaining, MAX_TIMER_MS),
      );
      this.timer.unref();
    };
    step();
  }

  /** Runs a full sync if this replica holds the schedule; never rejects (a failure is logged). */
  async tick(trigger: RunTrigger): Promise<void> {
    const owner = this.replica.id;
    try {
      if (!(await this.leases.acquireLease(SCHEDULE_LEASE, owner, this.clock.nowMs(), this.leaseMs))) {
        this.logger.debug({ trigger }, 'scheduled sync left to the replica that holds the schedule');
        return;
      }
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'periodic sync skipped: the schedule lease could not be read');
      return;
    }
    const renew = (): void =>
      detach(
        this.leases.acquireLease(SCHEDULE_LEASE, owner, this.clock.nowMs(), this.leaseMs),
        this.logger,
        'schedule lease renewal failed',
      );
    const renewal = setInterval(renew, this.leaseMs / 3);
    renewal.unref();
    try {
      const { done } = await this.sync.start({ trigger });
      await done;
    } catch (err) {
      if (err instanceof ConflictError) {
        this.logger.log({ runId: err.details?.runId }, 'periodic sync skipped: the previous run is still going');
        return;
      }
      this.logger.error({ err: errorMessage(err) }, 'periodic sync could not start');
    } finally {
      clearInterval(renewal);
    }
  }
}
