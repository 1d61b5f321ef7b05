import {
  CanActivate,
  ExecutionContext,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  ConflictException,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request, RequestHandler } from 'express';
import type { IncomingMessage } from 'node:http';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { SecretRef } from '../config/secret-ref';
import { EventInbox } from '../state/state.ports';
import { SecretValues } from './secret-values.service';
import { checkWebhookHeaders, SIGNATURE_HEADER, SIGNATURE_MISMATCH, TIMESTAMP_HEADER, verifyWebhook } from './webhook-signature';

/** Webhook requests refused on their headers alone: no body parser reads them. */
const unsignedRequests = new WeakSet<IncomingMessage>();

/** Whether the body of `req` must stay unread (see markUnsignedBeforeBody). */
export function refusedBeforeBody(req: IncomingMessage): boolean {
  return unsignedRequests.has(req);
}

/**
 * Runs before the body parsers: a webhook request without both signature headers, or with a
 * timestamp outside the window, is marked so that its body is never read (the parsers skip it, and
 * the connection closes after the answer, so the body is not drained either). It then goes on
 * through the rate limit to the guard, which refuses it with the same reason: an unsigned request
 * costs neither buffering nor parsing, and a flood of them is still limited.
 */
export function markUnsignedBeforeBody(config: AppConfig, clock: Clock): RequestHandler {
  return (req, res, next) => {
    const { webhookAuth, webhookSecret, webhookToleranceSeconds } = config.events;
    if (req.method !== 'POST' || webhookAuth === 'none' || !webhookSecret) return next();
    const framed = checkWebhookHeaders(
      { signature: req.get(SIGNATURE_HEADER), timestamp: req.get(TIMESTAMP_HEADER) },
      clock.nowMs(),
      webhookToleranceSeconds,
    );
    if (!framed.ok) {
      unsignedRequests.add(req);
      res.setHeader('connection', 'close');
    }
    next();
  };
}

/** A signature that matches no secret read within this long does not make the secret be read again. */
const REFETCH_EVERY_MS = 10_000;

/**
 * Lets a webhook request through only when its raw body is signed with the webhook secret within
 * the tolerance window. Without a secret the webhook stays closed (503): knowing the URL is not
 * enough. From Secrets Manager (WEBHOOK_SECRET_ARN) both the current and the previous version are
 * accepted, and a signature that matches neither makes the secret be read again (at most every
 * 10 s), so that the service follows a rotation the sender saw first. WEBHOOK_AUTH=none opens it to
 * unsigned senders, on purpose: a notification only names keys of the configured bucket, which the
 * service fetches from S3 itself, never content from the request.
 */
@Injectable()
export class WebhookSignatureGuard implements CanActivate, OnApplicationBootstrap {
  private readonly logger = new Logger(WebhookSignatureGuard.name);
  private lastRefetch = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly secrets: SecretValues,
    private readonly inbox: EventInbox,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.events.webhookAuth === 'none') {
      this.logger.warn('WEBHOOK_AUTH=none: the S3 notification webhook accepts unsigned requests from anyone who can reach it');
    }
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { webhookSecret, webhookToleranceSeconds, webhookAuth } = this.config.events;
    if (webhookAuth === 'none') return true;
    if (!webhookSecret) {
      throw new ServiceUnavailableException(
        'the webhook is disabled: set WEBHOOK_SECRET (or WEBHOOK_SECRET_ARN) on the service and the sender',
      );
    }
    const req = context.switchToHttp().getRequest<Request>();
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = async (refresh: boolean) =>
      verifyWebhook(
        await this.accepted(webhookSecret, refresh),
        { signature: req.get(SIGNATURE_HEADER), timestamp: req.get(TIMESTAMP_HEADER) },
        body,
        this.clock.nowMs(),
        webhookToleranceSeconds,
      );
    let result = await check(false);
    if (!result.ok && result.reason === SIGNATURE_MISMATCH && SecretValues.refreshable(webhookSecret) && this.mayRefetch()) {
      result = await check(true);
    }
    if (!result.ok) throw new UnauthorizedException(`invalid webhook signature: ${result.reason}`);
    // A signed request is good for its whole window: the same one again is a replay, refused.
    const windowEnd = new Date((result.timestamp + webhookToleranceSeconds) * 1000);
    if (!(await this.inbox.firstSeen(result.signature, windowEnd, this.clock.now()))) {
      throw new ConflictException('replayed webhook request: this signed request was already accepted');
    }
    return true;
  }

  private async accepted(ref: SecretRef, refresh: boolean): Promise<string[]> {
    const [current, previous] = await Promise.all([this.secrets.get(ref, { refresh }), this.secrets.previous(ref, { refresh })]);
    return previous === undefined ? [current] : [current, previous];
  }

  private mayRefetch(): boolean {
    const now = this.clock.nowMs();
    if (now - this.lastRefetch < REFETCH_EVERY_MS) return false;
    this.lastRefetch = now;
    return true;
  }
}
