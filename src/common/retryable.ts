/**
 * What is worth another attempt, for every outgoing call (S3, downstream, ingest, the Lambda's
 * forward): one rule, one place. Pure, so that the Lambda bundle can use it too.
 */

/**
 * The one predicate every retry policy and every breaker reads: the service's own errors say so
 * themselves (AppError.retryable), anything else is retryable when it is a dropped connection, a
 * failed lookup or a timeout. A policy that retries more (the mirror refetches an object that
 * changed under a ranged read) says so beside its policy.
 */
export function isRetryable(err: unknown): boolean {
  // By shape, like isNetworkOrTimeoutError: the flag is read whatever realm the error comes from.
  if (typeof err === 'object' && err !== null && typeof (err as { retryable?: unknown }).retryable === 'boolean') {
    return (err as { retryable: boolean }).retryable;
  }
  return isNetworkOrTimeoutError(err);
}

/** 408, 429 and 5xx: the server may answer differently next time. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
]);

/** A dropped or refused connection, a failed lookup, or a timeout (ours or the socket's). */
export function isNetworkOrTimeoutError(err: unknown): boolean {
  // By shape, not instanceof: errors may come from another realm (node internals seen from a VM context).
  if (typeof err !== 'object' || err === null) return false;
  const { name, cause, code } = err as { name?: unknown; cause?: unknown; code?: unknown };
  if (name === 'TimeoutError') return true;
  if (name === 'AbortError') return typeof cause === 'object' && cause !== null && (cause as { name?: unknown }).name === 'TimeoutError';
  return typeof code === 'string' && NETWORK_ERROR_CODES.has(code);
}
