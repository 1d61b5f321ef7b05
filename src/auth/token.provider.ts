import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { redactUrl } from '../common/redact';
import { Metrics } from '../metrics/metrics.service';
import { SecretValues } from './secret-values.service';

/** Tokens without an `exp` are kept this long. */
const DEFAULT_LIFETIME_MS = 50 * 60_000;
/** A token is renewed this long before its `exp`, so that no request leaves with one about to die. */
const EXPIRY_MARGIN_MS = 60_000;

/** The login failed; delivery treats it like an unreachable downstream (retried, counted by the breaker). */
export class LoginError extends AppError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super('UPSTREAM_ERROR', message, status === undefined ? undefined : { status }, { retryable: true });
  }
}

/**
 * The login endpoint refused the credentials (401/403, also after reading them again): not an
 * outage, so neither retried as one nor counted by the breaker. Delivery waits until a login is
 * accepted again (rotated credentials are read again at every check).
 */
export class CredentialsRefusedError extends AppError {
  constructor(readonly status: number) {
    super(
      'UPSTREAM_ERROR',
      `the downstream login refused the credentials (HTTP ${status}): delivery waits until ACCESS_KEY / SECRET_KEY are accepted`,
      { status },
      { retryable: false },
    );
  }
}

/**
 * The downstream's JWT: one login (POST ACCESS_KEY and SECRET_KEY to AUTH_URL) shared by every
 * concurrent request (single flight), cached until its `exp` less a margin, dropped on a 401 so that
 * the next caller logs in again. Credentials and tokens never reach a log line or an error message.
 */
@Injectable()
export class TokenProvider {
  private readonly logger = new Logger(TokenProvider.name);
  private cached?: { token: string; expiresAt: number };
  private inflight?: Promise<string>;
  /** The last refusal of the credentials, answered to every caller until `until`, then checked again. */
  private refused?: { error: CredentialsRefusedError; until: number };

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly secrets: SecretValues,
  ) {}

  get enabled(): boolean {
    return Boolean(this.config.delivery.authUrl);
  }

  /** A valid token, logging in when there is none; undefined when no AUTH_URL is configured. */
  async token(signal?: AbortSignal): Promise<string | undefined> {
    if (!this.enabled) return undefined;
    const now = this.clock.nowMs();
    if (this.cached && now < this.cached.expiresAt) return this.cached.token;
    // One login per RETRY_MAX_MS while the credentials are refused, whatever the number of waiting batches.
    if (this.refused && now < this.refused.until) throw this.refused.error;
    this.inflight ??= this.login(signal)
      .then(
        (token) => {
          this.metrics.logins.inc({ outcome: 'ok' });
          return token;
        },
        (err: unknown) => {
          this.metrics.logins.inc({ outcome: err instanceof CredentialsRefusedError ? 'refused' : 'failed' });
          throw err;
        },
      )
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** Forgets `token` after the downstream refused it; a newer token obtained meanwhile is kept. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async login(signal?: AbortSignal): Promise<string> {
    const { accessKey, secretKey } = this.config.delivery;
    let res = await this.postLogin(false, signal);
    // Refused: the credentials may have been rotated in SSM since they were read; read them once more.
    if ((res.status === 401 || res.status === 403) && (SecretValues.refreshable(accessKey) || SecretValues.refreshable(secretKey))) {
      await res.body?.cancel();
      res = await this.postLogin(true, signal);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      const error = new CredentialsRefusedError(res.status);
      // Said once, loudly, when it starts; the waiting batches do not repeat it.
      if (!this.refused) this.logger.error({ status: res.status, authUrl: redactUrl(this.config.delivery.authUrl!) }, error.message);
      this.refused = { error, until: this.clock.nowMs() + this.config.delivery.retryMaxMs };
      throw error;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new LoginError(`login refused with HTTP ${res.status}`, res.status);
    }
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    const token = [body?.token, body?.access_token, body?.accessToken, body?.jwt].find(
      (t): t is string => typeof t === 'string' && t !== '',
    );
    if (!token) throw new LoginError('login answer carries no token (expected token, access_token, accessToken or jwt)');
    const exp = jwtExpiry(token);
    const now = this.clock.nowMs();
    this.cached = { token, expiresAt: exp !== undefined ? Math.max(now, exp - EXPIRY_MARGIN_MS) : now + DEFAULT_LIFETIME_MS };
    if (this.refused) this.logger.warn('the downstream login accepts the credentials again: delivery resumes');
    this.refused = undefined;
    this.logger.log({ expiresAt: new Date(this.cached.expiresAt).toISOString() }, 'logged in to the downstream');
    return token;
  }

  private async postLogin(refresh: boolean, signal?: AbortSignal): Promise<Response> {
    const { authUrl, accessKey, secretKey, timeoutMs } = this.config.delivery;
    const [key, secret] = await Promise.all([accessKey, secretKey].map((ref) => ref && this.secrets.get(ref, { refresh })));
    try {
      return await fetch(authUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ accessKey: key, secretKey: secret }),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new LoginError(`login failed: ${(err as Error).message}`);
    }
  }
}

/** The `exp` claim of a JWT in milliseconds, without verifying it (the downstream does that). */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
