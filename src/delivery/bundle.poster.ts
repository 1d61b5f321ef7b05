import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { RetryPolicy } from 'cockatiel';
import type { Readable } from 'node:stream';
import { BreakerService } from '../breaker/breaker.service';
import { Clock } from '../common/clock';
import { isRetryable } from '../common/retryable';
import { AppConfig } from '../config/app-config';
import type { BundleRecord } from '../state/state.ports';
import { Metrics } from '../metrics/metrics.service';
import { deliveryRetryPolicy, HttpPoster, raiseForStatus, timedRequest } from './http-delivery';

/**
 * POSTs a bundle to NIFI_ENDPOINT_URL (Apache NiFi ListenHTTP style): gzip body, basic credentials,
 * the bundle's name and counts as headers, the delivery retry policy, through the endpoint's own
 * circuit breaker.
 */
@Injectable()
export class BundlePoster implements OnApplicationShutdown {
  private readonly policy: RetryPolicy;
  private readonly http: HttpPoster;

  constructor(
    private readonly config: AppConfig,
    private readonly breakers: BreakerService,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {
    this.policy = deliveryRetryPolicy(config, metrics, 'bundles');
    this.http = new HttpPoster(4, config.delivery.timeoutMs);
  }

  /** `body` is asked for on every attempt: a stream is read once. */
  async post(bundle: BundleRecord, body: () => Promise<{ body: Buffer | Readable; length: number }>, signal: AbortSignal): Promise<void> {
    const { url, username, password, format } = this.config.bundles;
    const headers: Record<string, string> = {
      'content-type': 'application/gzip',
      filename: bundle.archiveKey!.split('/').pop()!,
      'x-bundle-id': bundle.id,
      'x-bundle-files': String(bundle.files),
      'x-bundle-format': format,
    };
    if (username !== undefined) headers.authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    const breaker = this.breakers.for(url!);
    await this.policy.execute(
      ({ signal: attempt }) =>
        breaker.execute(
          async () => {
            const payload = await body();
            const answer = await timedRequest(this.metrics, 'bundles', () =>
              this.http.post(url!, headers, payload.body, payload.length, attempt),
            );
            raiseForStatus(answer, this.clock.nowMs());
          },
          isRetryable,
          attempt,
        ),
      signal,
    );
  }

  onApplicationShutdown(): void {
    this.http.destroy();
  }
}
