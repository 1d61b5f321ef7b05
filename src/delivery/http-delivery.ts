/**
 * What every HTTP sink shares: the POST itself (node:http with a keep-alive pool, measured at about
 * half the CPU of fetch per request), how an answer or an error is classified, and the retry policy.
 */
import { handleWhen, retry, RetryPolicy } from 'cockatiel';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../common/errors';
import { isRetryable, isRetryableStatus } from '../common/retryable';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { FullJitterBackoff, parseRetryAfter } from '../common/backoff';

/** Worth another attempt: 408, 429, 5xx. Counted by the circuit breaker, as are network errors and timeouts. */
export class TransientDeliveryError extends AppError {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super('UPSTREAM_ERROR', message, { status }, { retryable: true });
  }
}

/** The endpoint refused the request itself (4xx): retrying cannot help; it becomes a dead letter. */
export class PermanentDeliveryError extends AppError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super('UPSTREAM_ERROR', message, { status }, { retryable: false });
  }
}

export type DeliveryTarget = 'records' | 'bundles';

/** Retries of delivery requests (and logins): MAX_RETRIES with full-jitter backoff that honours Retry-After; each one counted. */
export function deliveryRetryPolicy(config: AppConfig, metrics: Metrics, target: DeliveryTarget): RetryPolicy {
  const { maxRetries, retryBaseMs, retryMaxMs } = config.delivery;
  const policy = retry(handleWhen(isRetryable), { maxAttempts: maxRetries, backoff: new FullJitterBackoff(retryBaseMs, retryMaxMs) });
  const retries = metrics.retries.labels({ target });
  policy.onRetry(() => retries.inc());
  return policy;
}

/** One request, its duration recorded by target and outcome (the answer's status class, or `error` without an answer). */
export async function timedRequest(metrics: Metrics, target: DeliveryTarget, send: () => Promise<PostAnswer>): Promise<PostAnswer> {
  const end = metrics.requestDuration.startTimer({ target });
  try {
    const answer = await send();
    end({ outcome: `${Math.floor(answer.status / 100)}xx` });
    return answer;
  } catch (err) {
    end({ outcome: 'error' });
    throw err;
  }
}

export interface PostAnswer {
  status: number;
  /** The start of the answer's body (for error messages). */
  text: string;
  retryAfter?: string;
}

/** Throws the classified error for a non-2xx answer. */
export function raiseForStatus(answer: PostAnswer, nowMs: number): void {
  if (answer.status >= 200 && answer.status < 300) return;
  const detail = answer.text.slice(0, 300);
  const message = `endpoint answered ${answer.status}${detail ? `: ${detail}` : ''}`;
  if (isRetryableStatus(answer.status)) {
    throw new TransientDeliveryError(message, answer.status, parseRetryAfter(answer.retryAfter, nowMs));
  }
  throw new PermanentDeliveryError(message, answer.status);
}

export class HttpPoster {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;

  constructor(
    maxSockets: number,
    private readonly timeoutMs: number,
  ) {
    const pool = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
    this.httpAgent = new HttpAgent(pool);
    this.httpsAgent = new HttpsAgent(pool);
  }

  /**
   * One POST; `body` is a buffer or a stream of `length` bytes. Network errors reject. The timeout
   * is the socket's and the abort listener is removed when the request ends: a timer signal per
   * request (AbortSignal.timeout) would hold every request for the whole timeout, memory growing
   * with the number of requests sent in that time.
   */
  post(url: string, headers: Record<string, string>, body: Buffer | Readable, length: number, signal: AbortSignal): Promise<PostAnswer> {
    signal.throwIfAborted();
    const target = new URL(url);
    const isHttps = target.protocol === 'https:';
    const send = isHttps ? httpsRequest : httpRequest;
    return new Promise<PostAnswer>((resolve, reject) => {
      const req = send(
        target,
        { method: 'POST', headers: { ...headers, 'content-length': length }, agent: isHttps ? this.httpsAgent : this.httpAgent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            // Only the start of an answer is kept (error messages).
            if (size < 4096) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
            });
          });
          res.on('error', reject);
        },
      );
      const onAbort = (): void => void req.destroy(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { name: 'TimeoutError' })),
      );
      req.on('error', reject);
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch(reject);
    });
  }

  destroy(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
