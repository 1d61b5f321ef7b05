/** A non-2xx answer from S3 to one of the service's own signed requests. */
export class S3RequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly s3Code: string,
    message: string,
  ) {
    super(message);
    this.name = 'S3RequestError';
  }
  /** Worth another attempt: throttling and server errors. */
  get retryable(): boolean {
    return this.statusCode >= 500 || this.statusCode === 429 || this.statusCode === 408 || this.s3Code === 'SlowDown';
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET']);

/** Failures of an S3 call worth another attempt: throttling, server errors, dropped connections, timeouts. */
export function isTransient(err: Error): boolean {
  if (err instanceof S3RequestError) return err.retryable;
  if (err.name === 'TimeoutError') return true;
  // By name, not instanceof: the DOMException may come from another realm (a VM context).
  if (err.name === 'AbortError') return typeof err.cause === 'object' && err.cause !== null && (err.cause as { name?: unknown }).name === 'TimeoutError';
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && TRANSIENT_CODES.has(code);
}
