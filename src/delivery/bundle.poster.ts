import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { RetryPolicy } from 'cockatiel';
import type { Readable } from 'node:stream';
import { SecretValues } from '../auth/secret-values.service';
import { BreakerService } from '../breaker/breaker.service';
import { Clock } from '../common/clock';
import { isRetryable } from '../common/retryable';
import { AppConfig } from '../config/app-config';
import type { BundleRecord } from '../state/state.ports';
import { Metrics } from '../metrics/metrics.service';
import { deliveryRetryPolicy, HttpPoster, PostAnswer, raiseForStatus, timedRequest } from './http-delivery';
import type { SharedCircuitBreaker } from '../breaker/shared-breaker';
import { SpanKind, traced, withTraceHeaders } from '../tracing/tracing';

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
    private readonly secrets: SecretValues,
  ) {
    this.policy = deliveryRetryPolicy(config, metrics, 'bundles');
    this.http = new HttpPoster(4, config.delivery.timeoutMs);
  }

  /** `body` is asked for on every attempt: a stream is read once. */
  async post(bundle: BundleRecord, body: () => Promise<{ body: Buffer | Readable; length: number }>, signal: AbortSignal): Promise<void> {
    const { url, format } = this.config.bundles;
    const headers: Record<string, string> = {
      'content-type': 'application/gzip',
      filename: bundle.archiveKey!.split('/').pop()!,
      'x-bundle-id': bundle.id,
      'x-bundle-files': String(bundle.files),
      'x-bundle-format': format,
    };
    const send = async (refresh: boolean, attempt: AbortSignal) => {
      const auth = await this.authorization(refresh);
      const payload = await body();
      // Inside the bundle.post span: the ingest endpoint sees it as the caller.
      const withAuth = withTraceHeaders(auth ? { ...headers, authorization: auth } : headers);
      return timedRequest(this.metrics, 'bundles', () => this.http.post(url!, withAuth, payload.body, payload.length, attempt));
    };
    const breaker = this.breakers.for(url!);
    await traced(
      'bundle.post',
      { 'bundle.id': bundle.id, 'bundle.files': bundle.files },
      () => this.postWithPolicy(breaker, send, signal),
      SpanKind.CLIENT,
    );
  }

  private async postWithPolicy(
    breaker: SharedCircuitBreaker,
    send: (refresh: boolean, attempt: AbortSignal) => Promise<PostAnswer>,
    signal: AbortSignal,
  ): Promise<void> {
    const { username, password } = this.config.bundles;
    await this.policy.execute(
      ({ signal: attempt }) =>
        breaker.execute(
          async () => {
            let answer = await send(false, attempt);
            // Refused: the credentials may have been rotated in Secrets Manager; read them once more.
            const refreshable = SecretValues.refreshable(username) || SecretValues.refreshable(password);
            if ((answer.status === 401 || answer.status === 403) && refreshable) answer = await send(true, attempt);
            raiseForStatus(answer, this.clock.nowMs());
          },
          isRetryable,
          attempt,
        ),
      signal,
    );
  }

  /** Basic credentials from NIFI_USERNAME / NIFI_PASSWORD or NIFI_SECRET_ARN; undefined without a user name. */
  private async authorization(refresh: boolean): Promise<string | undefined> {
    const { username, password } = this.config.bundles;
    if (!username) return undefined;
    const [user, pass] = await Promise.all([
      this.secrets.get(username, { refresh }),
      password ? this.secrets.get(password, { refresh }) : '',
    ]);
    return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }

  onApplicationShutdown(): void {
    this.http.destroy();
  }
}
