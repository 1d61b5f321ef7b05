import { CanActivate, ExecutionContext, Injectable, SetMetadata, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config';

export const PUBLIC_ROUTE = 'publicRoute';

/** Requests whose caller holds the API key (every request when no API_KEY is set). */
const keyHolders = new WeakSet<Request>();

/**
 * Whether the caller of `req` holds the API key, for public routes that show more to those who do
 * (health details, the bucket's name). Decided by the ApiKeyGuard, which runs before every handler.
 */
export function callerHoldsKey(req: Request): boolean {
  return keyHolders.has(req);
}
/** Marks a handler or controller as reachable without the API key (health, service info). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * When API_KEY is set, every route not marked @Public needs it, as `x-api-key` or `Authorization: Bearer`.
 * Keys are compared through their SHA-256 digests in constant time, so neither content nor length leaks.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(
    config: AppConfig,
    private readonly reflector: Reflector,
  ) {
    this.expected = config.api.apiKey ? digest(config.api.apiKey) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    if (!this.expected) {
      keyHolders.add(req);
      return true;
    }
    const presented = presentedKey(req);
    const holdsKey = presented !== undefined && timingSafeEqual(digest(presented), this.expected);
    if (holdsKey) keyHolders.add(req);
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()])) return true;
    if (presented === undefined) throw new UnauthorizedException('an API key is required (x-api-key header or Authorization: Bearer)');
    if (!holdsKey) throw new UnauthorizedException('invalid API key');
    return true;
  }
}

function presentedKey(req: Request): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header) return header;
  const auth = req.headers.authorization;
  const match = auth ? /^Bearer\s+(.+)$/i.exec(auth) : null;
  return match?.[1];
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
