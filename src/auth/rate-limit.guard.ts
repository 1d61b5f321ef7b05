import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Request } from 'express';

/** The routes the rate limit covers: the API and the webhook, not health (probes must always get through). */
export function isRateLimited(path: string): boolean {
  return path.startsWith('/api/v1/') && !path.startsWith('/api/v1/health');
}

/**
 * RATE_LIMIT_PER_SECOND per client address (the socket's, or X-Forwarded-For's behind TRUST_PROXY
 * hops), counted in this process; over it, 429 with Retry-After. Runs before the API key check, so
 * that guessing keys is limited too.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return !isRateLimited(context.switchToHttp().getRequest<Request>().path) || super.shouldSkip(context);
  }
}
