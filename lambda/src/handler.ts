/**
 * The thin forwarder: receives S3 event notifications (directly from the bucket, from an SQS queue,
 * or from EventBridge) and POSTs them, signed, to the service's webhook. No Nest and no AWS SDK:
 * bundled by esbuild into one small file (`npm run build:lambda` -> lambda/dist/handler.js).
 *
 * Failure handling follows the trigger: from SQS it reports `batchItemFailures` so that only the
 * messages it could not forward come back (and reach the queue's DLQ after maxReceiveCount); from
 * S3 or EventBridge (asynchronous invocations) it throws, so Lambda retries and then hands the event
 * to the on-failure destination.
 */
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { signWebhook, WEBHOOK_PATH } from '../../src/auth/webhook-signature';
import { isRetryableStatus } from '../../src/common/retryable';

export interface ForwarderConfig {
  /** Base URL of the service, e.g. https://mirror.example.com */
  apiEndpoint: string;
  webhookSecret: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Retries after the first attempt (0 = none), as RETRY_ATTEMPTS means in the service. */
  retryAttempts: number;
  /** Backoff base and cap (exponential with decorrelated jitter). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export type LogEntry = Record<string, unknown> & { level: 'info' | 'warn' | 'error'; msg: string };

export interface ForwarderDeps {
  fetch?: typeof fetch;
  now?: () => number;
  log?: (entry: LogEntry) => void;
}

/** An answer that another attempt cannot change (4xx other than 408/429). */
export class PermanentForwardError extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(`webhook answered ${status}: ${detail}`);
    this.name = 'PermanentForwardError';
  }
}

/** A failure worth another attempt: network errors, timeouts, 408, 429, 5xx. */
export class TransientForwardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientForwardError';
  }
}

/** Reads the Lambda's environment; throws naming what is missing or wrong. */
export function configFromEnv(env: Record<string, string | undefined> = process.env): ForwarderConfig {
  const problems: string[] = [];
  const apiEndpoint = env.API_ENDPOINT?.trim() ?? '';
  if (!/^https?:\/\/[^/]+/.test(apiEndpoint)) problems.push('API_ENDPOINT must be the http(s) base URL of the service');
  const webhookSecret = env.WEBHOOK_SECRET ?? '';
  if (webhookSecret.length < 16) problems.push('WEBHOOK_SECRET must be set (at least 16 characters, the same as the service)');
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) problems.push(`${name} must be a number from ${min} to ${max}`);
    return value;
  };
  const timeoutSeconds = number('TIMEOUT_SECONDS', 10, 1, 900);
  const retryAttempts = number('RETRY_ATTEMPTS', 3, 0, 10);
  if (problems.length > 0) throw new Error(`invalid forwarder configuration: ${problems.join('; ')}`);
  return { apiEndpoint: apiEndpoint.replace(/\/+$/, ''), webhookSecret, timeoutMs: timeoutSeconds * 1000, retryAttempts };
}

const jsonLog = (entry: LogEntry): void => {
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry });
  if (entry.level === 'error') console.error(line);
  else console.log(line);
};

type IncomingEvent = { Records?: unknown[] } & Record<string, unknown>;

export function createHandler(config: ForwarderConfig, deps: ForwarderDeps = {}) {
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? jsonLog;
  const url = `${config.apiEndpoint}${WEBHOOK_PATH}`;
  const policy = retry(
    handleWhen((e) => e instanceof TransientForwardError),
    {
      maxAttempts: config.retryAttempts,
      backoff: new ExponentialBackoff({ initialDelay: config.initialDelayMs ?? 200, maxDelay: config.maxDelayMs ?? 5000 }),
    },
  );

  async function attempt(body: string, deadline: number, signal: AbortSignal): Promise<unknown> {
    const budget = Math.min(config.timeoutMs, deadline - now());
    if (budget <= 0) throw new Error('no time left in this invocation to forward');
    let res: Response;
    try {
      res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signWebhook(config.webhookSecret, body, now()) },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(budget)]),
      });
    } catch (err) {
      throw new TransientForwardError(`webhook unreachable: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return text ? (JSON.parse(text) as unknown) : undefined;
    // A replay: an earlier attempt of this very request (same body, same second) was accepted.
    if (res.status === 409) return undefined;
    const detail = text.slice(0, 500);
    if (isRetryableStatus(res.status)) throw new TransientForwardError(`webhook answered ${res.status}: ${detail}`);
    throw new PermanentForwardError(res.status, detail);
  }

  async function forward(body: string, deadline: number, context: Record<string, unknown>): Promise<unknown> {
    const listener = policy.onRetry((r) =>
      log({ level: 'warn', msg: 'retrying forward', ...context, reason: 'error' in r ? r.error.message : 'result', delayMs: r.delay }),
    );
    try {
      const report = await policy.execute(({ signal }) => attempt(body, deadline, signal));
      log({ level: 'info', msg: 'forwarded', ...context, report: summary(report) });
      return report;
    } finally {
      listener.dispose();
    }
  }

  return async function handler(
    event: IncomingEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>,
  ): Promise<SQSBatchResponse | { forwarded: true }> {
    // Keep a second for the runtime to answer before the function's own timeout.
    const deadline = now() + (context ? context.getRemainingTimeInMillis() - 1000 : config.timeoutMs * (config.retryAttempts + 1) + 60_000);
    const requestId = context?.awsRequestId;
    const records = Array.isArray(event.Records) ? event.Records : undefined;
    if (records && records.length > 0 && records.every(isSqsRecord)) {
      const failures: SQSBatchItemFailure[] = [];
      await Promise.all(
        records.map(async (record) => {
          try {
            await forward(record.body, deadline, { requestId, messageId: record.messageId });
          } catch (err) {
            log({
              level: 'error',
              msg: 'forward failed; message returns to the queue',
              requestId,
              messageId: record.messageId,
              err: (err as Error).message,
            });
            failures.push({ itemIdentifier: record.messageId });
          }
        }),
      );
      return { batchItemFailures: failures };
    }
    try {
      await forward(JSON.stringify(event), deadline, { requestId, records: records?.length ?? 1 });
    } catch (err) {
      log({
        level: 'error',
        msg: 'forward failed; Lambda retries, then the on-failure destination keeps the event',
        requestId,
        err: (err as Error).message,
      });
      throw err;
    }
    return { forwarded: true };
  };
}

function isSqsRecord(r: unknown): r is SQSRecord {
  return (
    typeof r === 'object' &&
    r !== null &&
    (r as { eventSource?: unknown }).eventSource === 'aws:sqs' &&
    typeof (r as { body?: unknown }).body === 'string'
  );
}

function summary(report: unknown): unknown {
  if (typeof report !== 'object' || report === null) return undefined;
  const { accepted, ignored, rejected } = report as Record<string, unknown>;
  return { accepted, ignored, rejected };
}

let configured: ReturnType<typeof createHandler> | undefined;

/** The Lambda entry point: configuration is read once per container. */
export const handler = (event: IncomingEvent, context: Context): Promise<SQSBatchResponse | { forwarded: true }> => {
  configured ??= createHandler(configFromEnv());
  return configured(event, context);
};
