/** Machine-readable error codes; the exception filter maps each to one HTTP status. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNSAFE_KEY: 400,
  INTEGRITY_MISMATCH: 502,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
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

export class IntegrityError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('INTEGRITY_MISMATCH', message, details);
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
