import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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

const NETWORK_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

function isTransient(err: unknown): boolean {
  if (err instanceof PermanentDeliveryError) return false;
  if (err instanceof TransientDeliveryError || err instanceof LoginError) return true;
  if (!(err instanceof Error)) return false;
  // Per-attempt timeouts abort the request with the signal's TimeoutError as the cause.
  if (err.name === 'TimeoutError' || (err.name === 'AbortError' && (err.cause as Error | undefined)?.name === 'TimeoutError')) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && NETWORK_ERRORS.has(code);
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
export class RecordsSink implements OnApplicationShutdown {
  private readonly policy: RetryPolicy;
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;

  constructor(
    private readonly config: AppConfig,
    private readonly tokens: TokenProvider,
    private readonly breakers: BreakerService,
    private readonly clock: Clock,
  ) {
    const { maxRetries, retryBaseMs, retryMaxMs } = config.delivery;
    this.policy = retry(handleWhen(isTransient), { maxAttempts: maxRetries, backoff: new FullJitterBackoff(retryBaseMs, retryMaxMs) });
    const pool = { keepAlive: true, maxSockets: config.delivery.concurrency, maxFreeSockets: config.delivery.concurrency };
    this.httpAgent = new HttpAgent(pool);
    this.httpsAgent = new HttpsAgent(pool);
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
      this.tokens.invalidate(token);
      token = await this.tokens.token(signal);
      res = await this.request(url, body, idempotencyKey, token, signal);
    }
    if (res.status >= 200 && res.status < 300) return;
    const detail = res.text.slice(0, 300);
    const message = `downstream answered ${res.status}${detail ? `: ${detail}` : ''}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new TransientDeliveryError(message, res.status, parseRetryAfter(res.retryAfter, this.clock.nowMs()));
    }
    throw new PermanentDeliveryError(message, res.status);
  }

  /**
   * One POST over node:http with a keep-alive pool sized to DELIVERY_CONCURRENCY: measured at about
   * half the CPU of fetch per request, which was the largest cost of delivery after parsing.
   */
  private request(url: string, body: string, idempotencyKey: string, token: string | undefined, signal: AbortSignal): Promise<PostAnswer> {
    const target = new URL(url);
    const payload = Buffer.from(body);
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': payload.length,
      'idempotency-key': idempotencyKey,
    };
    if (token) headers.authorization = `Bearer ${token}`;
    const isHttps = target.protocol === 'https:';
    const send = isHttps ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        target,
        { method: 'POST', headers, agent: isHttps ? this.httpsAgent : this.httpAgent, signal: AbortSignal.any([signal, AbortSignal.timeout(this.config.delivery.timeoutMs)]) },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            // Only the start of an error answer is kept (for the dead letter's reason).
            if (size < 4096) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  onApplicationShutdown(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

interface PostAnswer {
  status: number;
  text: string;
  retryAfter?: string;
}
