/**
 * What is worth another attempt, for every outgoing call (S3, downstream, ingest, the Lambda's
 * forward): one rule, one place. Pure, so that the Lambda bundle can use it too.
 */

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
