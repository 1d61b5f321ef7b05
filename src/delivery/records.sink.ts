import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { RetryPolicy } from 'cockatiel';
import { TokenProvider } from '../auth/token.provider';
import { BreakerService } from '../breaker/breaker.service';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { isRetryable } from '../common/retryable';
import { Metrics } from '../metrics/metrics.service';
import { deliveryRetryPolicy, HttpPoster, PostAnswer, raiseForStatus, timedRequest } from './http-delivery';
import { SpanKind, traced, withTraceHeaders } from '../tracing/tracing';

/**
 * POSTs batch bodies to CALL_DETAILS_URL: bearer token from the TokenProvider (one re-login and one
 * retry on a 401), an Idempotency-Key that is the same on every attempt, retries with full-jitter
 * backoff (cockatiel) honouring Retry-After, all through the endpoint's shared circuit breaker.
 */
@Injectable()
export class RecordsSink implements OnApplicationShutdown {
  private readonly policy: RetryPolicy;
  private readonly http: HttpPoster;

  constructor(
    private readonly config: AppConfig,
    private readonly tokens: TokenProvider,
    private readonly breakers: BreakerService,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {
    this.policy = deliveryRetryPolicy(config, metrics, 'records');
    this.http = new HttpPoster(config.delivery.concurrency, config.delivery.timeoutMs);
  }

  /** Resolves once the downstream acknowledged the body; throws the last error otherwise. */
  async send(body: string, idempotencyKey: string, signal?: AbortSignal): Promise<void> {
    const url = this.config.delivery.url;
    if (!url) throw new Error('CALL_DETAILS_URL is not configured');
    const breaker = this.breakers.for(url);
    await traced(
      'delivery.batch',
      { 'delivery.idempotency_key': idempotencyKey, 'http.request.body.size': body.length },
      () =>
        this.policy.execute(
          ({ signal: attemptSignal }) =>
            breaker.execute(() => this.post(url, body, idempotencyKey, attemptSignal), isRetryable, attemptSignal),
          signal,
        ),
      SpanKind.CLIENT,
    );
  }

  private async post(url: string, body: string, idempotencyKey: string, signal: AbortSignal): Promise<void> {
    let token = await this.tokens.token(signal);
    let res = await this.request(url, body, idempotencyKey, token, signal);
    if (res.status === 401 && token) {
      // The token was revoked or expired early: one fresh login for every waiter, then once more.
      this.tokens.invalidate(token);
      token = await this.tokens.token(signal);
      res = await this.request(url, body, idempotencyKey, token, signal);
    }
    raiseForStatus(res, this.clock.nowMs());
  }

  private request(url: string, body: string, idempotencyKey: string, token: string | undefined, signal: AbortSignal): Promise<PostAnswer> {
    const payload = Buffer.from(body);
    const headers = withTraceHeaders({ 'content-type': 'application/json', 'idempotency-key': idempotencyKey });
    if (token) headers.authorization = `Bearer ${token}`;
    return timedRequest(this.metrics, 'records', () => this.http.post(url, headers, payload, payload.length, signal));
  }

  onApplicationShutdown(): void {
    this.http.destroy();
  }
}
