/** Machine-readable error codes; the exception filter maps each to one HTTP status. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
  UNSAFE_KEY: 400,
  INTEGRITY_MISMATCH: 502,
  /** An outside system (S3, the downstream, the ingest endpoint, the login) answered with an error. */
  UPSTREAM_ERROR: 502,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * The service's own errors: a code the exception filter maps to an HTTP status, details for the
 * answer's body, and whether the same call may succeed if tried again.
 */
export class AppError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options: { retryable?: boolean } = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_REQUEST', message, details);
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFLICT', message, details);
  }
}

export class UnsafeKeyError extends AppError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super('UNSAFE_KEY', `refused key ${JSON.stringify(key)}: ${reason}`, { key, reason });
  }
}

/** A body that does not match its size or checksum: fetched again, since the next copy may be sound. */
export class IntegrityError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('INTEGRITY_MISMATCH', message, details, { retryable: true });
  }
}

/** Work refused because the process is stopping: it is resumed at the next start, never counted as failed. */
export class ShuttingDownError extends AppError {
  constructor() {
    super('UNAVAILABLE', 'the service is shutting down', undefined, { retryable: true });
  }
}

/** More full syncs asked for than MAX_CONCURRENT_RUNS lets run at once. */
export class TooManyRunsError extends AppError {
  constructor(limit: number, running: string[]) {
    super(
      'TOO_MANY_REQUESTS',
      `${running.length} syncs are running, the most MAX_CONCURRENT_RUNS (${limit}) allows; try again once one ends`,
      {
        running,
      },
    );
  }
}

/** A delete from an event beyond the delete budget: it waits for an operator or the next full sync. */
export class DeleteHeldError extends AppError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super('CONFLICT', `delete of ${JSON.stringify(key)} held: ${reason}`, { key, reason });
  }
}

/** Whether `err` is a system error with this errno code (ENOENT, EISDIR...). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
