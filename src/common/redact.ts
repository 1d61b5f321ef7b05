const REDACTED = '[redacted]';

/**
 * A URL fit to show or log: its user-info and the value of every query parameter replaced (a
 * `?api_key=` is as secret as a password). What is not a URL is returned as it is.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.username || url.password) {
    url.username = REDACTED;
    url.password = '';
  }
  for (const name of new Set(url.searchParams.keys())) url.searchParams.set(name, REDACTED);
  // URLSearchParams percent-encodes the brackets; the marker reads better as itself.
  return url.toString().replaceAll('%5Bredacted%5D', REDACTED);
}

/**
 * A copy of `value` fit to show: every string that is a URL redacted as above, and every
 * occurrence of one of `secrets` masked wherever it appears, whatever the field is called.
 */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  const masks = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let out = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? redactUrl(v) : v;
      for (const secret of masks) out = out.replaceAll(secret, REDACTED);
      return out;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, walk(inner)]));
    }
    return v;
  };
  return walk(value) as T;
}
