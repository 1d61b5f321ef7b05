import { isNetworkOrTimeoutError, isRetryableStatus } from '../common/retryable';

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
    return isRetryableStatus(this.statusCode) || this.s3Code === 'SlowDown';
  }
}

/** Failures of an S3 call worth another attempt: throttling, server errors, dropped connections, timeouts. */
export function isTransient(err: Error): boolean {
  if (err instanceof S3RequestError) return err.retryable;
  return isNetworkOrTimeoutError(err);
}
