import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ERROR_STATUS } from './errors';

interface ErrorBody {
  [extra: string]: unknown;
  statusCode: number;
  error: string;
  message: string | string[];
  correlationId?: string;
  details?: Record<string, unknown>;
}

/** Maps every error to `{ statusCode, error, message, correlationId }`; unknown errors never leak internals. */
@Catch()
export class AppExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request & { id?: string | number }>();
    const correlationId = req.id === undefined ? undefined : String(req.id);
    const body = this.toBody(exception);
    body.correlationId = correlationId;
    if (body.statusCode >= 500) {
      this.logger.error({ err: exception, correlationId, path: req.path }, 'request failed');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof AppError) {
      const statusCode = ERROR_STATUS[exception.code];
      return { statusCode, error: exception.code, message: exception.message, details: exception.details };
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const response = exception.getResponse();
      const error = HttpStatus[statusCode] ?? 'ERROR';
      if (typeof response !== 'object' || response === null) return { statusCode, error, message: exception.message };
      // Keep structured payloads (terminus says which check failed) beside the common fields.
      const { message, statusCode: _s, ...rest } = response as Record<string, unknown>;
      return { statusCode, error, message: (message as string | string[] | undefined) ?? exception.message, ...rest };
    }
    if (isBodyParserError(exception)) {
      return { statusCode: exception.status, error: HttpStatus[exception.status] ?? 'ERROR', message: exception.message };
    }
    return { statusCode: 500, error: 'INTERNAL', message: 'internal error' };
  }
}

function isBodyParserError(e: unknown): e is { status: number; message: string } {
  return typeof e === 'object' && e !== null && 'status' in e && typeof e.status === 'number' && e.status >= 400 && e.status < 500;
}
