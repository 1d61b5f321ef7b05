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

/**
 * S3's answer to a GET of an object that is archived (GLACIER, DEEP_ARCHIVE, or an Intelligent-Tiering
 * archive tier) and not restored: the object exists but cannot be read until it is restored.
 */
export function isArchivedObjectError(err: unknown): err is S3RequestError {
  return err instanceof S3RequestError && err.statusCode === 403 && err.s3Code === 'InvalidObjectState';
}

/** What the service says of an object S3 refused as archived: the same words in a run's report, a 404 and the log. */
export const ARCHIVED_ON_GET = 'archived (S3 answered InvalidObjectState): restore it to mirror it';
