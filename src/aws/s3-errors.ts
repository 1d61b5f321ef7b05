import { AppError } from '../common/errors';
import { isRetryableStatus } from '../common/retryable';

/** A non-2xx answer from S3 to one of the service's own signed requests; throttling and server errors are worth another attempt. */
export class S3RequestError extends AppError {
  constructor(
    readonly statusCode: number,
    readonly s3Code: string,
    message: string,
  ) {
    super(
      'UPSTREAM_ERROR',
      message,
      { s3Status: statusCode, s3Code },
      { retryable: isRetryableStatus(statusCode) || s3Code === 'SlowDown' },
    );
  }
}
