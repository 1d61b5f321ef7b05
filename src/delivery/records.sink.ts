import { Injectable, Logger } from '@nestjs/common';
import { handleWhen, retry, RetryPolicy } from 'cockatiel';
import { LoginError, TokenProvider } from '../auth/token-provider';
import { BreakerService } from '../breaker/breaker.service';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { FullJitterBackoff, parseRetryAfter } from './backoff';

/** Worth another attempt: network errors, timeouts, 408, 429, 5xx. Counted by the circuit breaker. */
export class TransientDeliveryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientDeliveryError';
  }
}

/** The downstream refused the batch itself (4xx): retrying cannot help; it becomes a dead letter. */
export class PermanentDeliveryError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'PermanentDeliveryError';
  }
}

function isTransient(err: unknown): boolean {
  if (err instanceof PermanentDeliveryError) return false;
  if (err instanceof TransientDeliveryError || err instanceof LoginError) return true;
  // fetch's network failures (TypeError "fetch failed") and per-attempt timeouts.
  return err instanceof Error && (err.name === 'TypeError' || err.name === 'TimeoutError');
}

export interface SendResult {
  attempts: number;
}

/**
 * POSTs batch bodies to CALL_DETAILS_URL: bearer token from the TokenProvider (one re-login and one
 * retry on a 401), an Idempotency-Key that is the same on every attempt, retries with full-jitter
 * backoff (cockatiel) honouring Retry-After, all through the endpoint's shared circuit breaker.
 */
@Injectable()
export class RecordsSink {
  private readonly logger = new Logger(RecordsSink.name);
  private readonly policy: RetryPolicy;

  constructor(
    private readonly config: AppConfig,
    private readonly tokens: TokenProvider,
    private readonly breakers: BreakerService,
    private readonly clock: Clock,
  ) {
    const { maxRetries, retryBaseMs, retryMaxMs } = config.delivery;
    this.policy = retry(handleWhen(isTransient), { maxAttempts: maxRetries, backoff: new FullJitterBackoff(retryBaseMs, retryMaxMs) });
  }

  get url(): string | undefined {
    return this.config.delivery.url;
  }

  /** Resolves once the downstream acknowledged the body; throws the last error otherwise. */
  async send(body: string, idempotencyKey: string, signal?: AbortSignal): Promise<SendResult> {
    const url = this.config.delivery.url;
    if (!url) throw new Error('CALL_DETAILS_URL is not configured');
    const breaker = this.breakers.for(url);
    let attempts = 0;
    await this.policy.execute(
      ({ signal: attemptSignal }) =>
        breaker.execute(
          () => {
            attempts++;
            return this.post(url, body, idempotencyKey, attemptSignal);
          },
          isTransient,
          attemptSignal,
        ),
      signal,
    );
    return { attempts };
  }

  private async post(url: string, body: string, idempotencyKey: string, signal: AbortSignal): Promise<void> {
    let token = await this.tokens.token(signal);
    let res = await this.request(url, body, idempotencyKey, token, signal);
    if (res.status === 401 && token) {
      // The token was revoked or expired early: one fresh login for every waiter, then once more.
      await res.body?.cancel();
      this.tokens.invalidate(token);
      token = await this.tokens.token(signal);
      res = await this.request(url, body, idempotencyKey, token, signal);
    }
    if (res.ok) {
      await res.body?.cancel();
      return;
    }
    const detail = (await res.text().catch(() => '')).slice(0, 300);
    const message = `downstream answered ${res.status}${detail ? `: ${detail}` : ''}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new TransientDeliveryError(message, res.status, parseRetryAfter(res.headers.get('retry-after'), this.clock.nowMs()));
    }
    throw new PermanentDeliveryError(message, res.status);
  }

  private request(url: string, body: string, idempotencyKey: string, token: string | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': idempotencyKey };
    if (token) headers.authorization = `Bearer ${token}`;
    return fetch(url, { method: 'POST', headers, body, signal: AbortSignal.any([signal, AbortSignal.timeout(this.config.delivery.timeoutMs)]) });
  }
}
