import { BadRequestError } from './errors';

/**
 * The object key in a route like `/api/v1/download/<key>` or `/api/v1/files/<key>/status`, taken
 * from the raw URL and decoded once, so that %2F, + and %25 mean what they say (the router's own
 * splitting of `*path` parameters would decode per segment).
 */
export function keyFromRoute(originalUrl: string, prefix: string, suffix = '', parameter = 'path'): string {
  const path = originalUrl.split('?')[0];
  const inRoute = path.startsWith(prefix) && path.endsWith(suffix);
  const encoded = inRoute ? path.slice(prefix.length, path.length - suffix.length) : '';
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new BadRequestError(`${parameter}: malformed percent-encoding`, { parameter });
  }
  if (!key) throw new BadRequestError(`${parameter}: an object key is required`, { parameter });
  return key;
}
