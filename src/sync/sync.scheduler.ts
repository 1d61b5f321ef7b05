import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { detach } from '../common/detach';
import { ConflictError, errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { RunTrigger } from '../state/state-store';
import { SyncService } from './sync.service';

const JOB = 'periodic-sync';

/** Periodic full syncs: SYNC_CRON when set, else every SYNC_INTERVAL_HOURS. A tick never overlaps a running sync. */
@Injectable()
export class SyncScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(SyncScheduler.name);

  constructor(
    private readonly config: AppConfig,
    private readonly registry: SchedulerRegistry,
    private readonly sync: SyncService,
  ) {}

  onApplicationBootstrap(): void {
    const { periodic, cron, intervalHours, onStart } = this.config.sync;
    if (periodic) {
      if (cron) {
        const job = CronJob.from({ cronTime: cron, onTick: () => this.tick('schedule'), start: true, waitForCompletion: true });
        this.registry.addCronJob(JOB, job);
        this.logger.log({ cron, next: job.nextDate().toISO() }, 'periodic sync scheduled');
      } else {
        const ms = Math.round(intervalHours * 3_600_000);
        this.registry.addInterval(
          JOB,
          setInterval(() => detach(this.tick('schedule'), this.logger, 'periodic sync failed'), ms),
        );
        this.logger.log({ everyHours: intervalHours }, 'periodic sync scheduled');
      }
    }
    if (onStart) detach(this.tick('startup'), this.logger, 'sync at start-up failed');
  }

  async tick(trigger: RunTrigger): Promise<void> {
    try {
      const { done } = await this.sync.start({ trigger });
      await done;
    } catch (err) {
      if (err instanceof ConflictError) {
        this.logger.log({ runId: err.details?.runId }, 'periodic sync skipped: the previous run is still going');
        return;
      }
      this.logger.error({ err: errorMessage(err) }, 'periodic sync could not start');
    }
  }
}
