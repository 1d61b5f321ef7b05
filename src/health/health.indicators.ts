import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { randomBytes } from 'node:crypto';
import { statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Repository } from '../aws/s3.repository';
import { BreakerService } from '../breaker/breaker.service';
import { isErrno } from '../common/errors';
import { TEMP_SUFFIX } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import { DeliveryLedger, RunStore } from '../state/state.ports';

const TIMEOUT_MS = 3000;

/** One indicator per dependency, each with a timeout, as terminus intends. */
@Injectable()
export class HealthIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly config: AppConfig,
    private readonly s3: S3Repository,
    /** Local state (always SQLite) and the shared state (SQLite or DynamoDB). */
    private readonly local: RunStore,
    private readonly shared: DeliveryLedger,
    private readonly breakers: BreakerService,
  ) {}

  bucket(): PromiseLike<HealthIndicatorResult<'bucket'>> {
    return this.health
      .check('bucket')
      .attempt(async () => {
        await this.s3.headBucket();
        return { bucket: this.config.s3.bucket };
      })
      .withTimeout(TIMEOUT_MS)
      .cacheFor(2000);
  }

  downloadDir(): PromiseLike<HealthIndicatorResult<'downloadDir'>> {
    return this.health
      .check('downloadDir')
      .attempt(async () => {
        // The reserved suffix keeps the probe from ever shadowing a key; the start-up sweep of
        // partial files may remove it first, which is fine.
        const probe = join(this.config.sync.localDir, `.health-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
        await writeFile(probe, '');
        await unlink(probe).catch((err: unknown) => {
          if (!isErrno(err, 'ENOENT')) throw err;
        });
        return { writable: true };
      })
      .withTimeout(TIMEOUT_MS);
  }

  async disk(): Promise<HealthIndicatorResult<'disk'>> {
    const indicator = this.health.check('disk');
    const fs = await statfs(this.config.sync.localDir);
    const freeBytes = fs.bavail * fs.bsize;
    const minFreeBytes = this.config.sync.minFreeDiskBytes;
    return freeBytes >= minFreeBytes
      ? indicator.up({ freeBytes, minFreeBytes })
      : indicator.down({ freeBytes, minFreeBytes, message: 'low disk space' });
  }

  stateStore(): PromiseLike<HealthIndicatorResult<'stateStore'>> {
    return this.health
      .check('stateStore')
      .attempt(async () => {
        await Promise.all([this.local.ping(), this.shared.ping()]);
        return { backend: this.config.state.backend };
      })
      .withTimeout(TIMEOUT_MS);
  }

  /**
   * The downstream's circuit breakers. An open breaker makes the service degraded, not down: the
   * mirror still works and delivery waits, so readiness must not take the replica out of service.
   */
  async downstream(): Promise<HealthIndicatorResult<'downstream'>> {
    const indicator = this.health.check('downstream');
    if (!this.config.delivery.url) return indicator.up({ configured: false });
    const breakers = await this.breakers.states();
    const open = breakers.filter((b) => b.state !== 'closed');
    return indicator.up({
      configured: true,
      condition: open.length > 0 ? 'degraded' : 'ok',
      breakers: breakers.map((b) => ({
        endpoint: b.name,
        state: b.state,
        openedAt: b.openedAt ? new Date(b.openedAt).toISOString() : null,
      })),
    });
  }
}
