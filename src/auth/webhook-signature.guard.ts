import {
  CanActivate,
  ExecutionContext,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request } from 'express';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhook } from './webhook-signature';

/**
 * Lets a webhook request through only when its raw body is signed with WEBHOOK_SECRET within the
 * tolerance window. Without a secret the webhook stays closed (503): knowing the URL is not enough.
 * WEBHOOK_AUTH=none opens it to unsigned senders, on purpose: a notification only names keys of the
 * configured bucket, which the service fetches from S3 itself, never content from the request.
 */
@Injectable()
export class WebhookSignatureGuard implements CanActivate, OnApplicationBootstrap {
  private readonly logger = new Logger(WebhookSignatureGuard.name);

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.events.webhookAuth === 'none') {
      this.logger.warn('WEBHOOK_AUTH=none: the S3 notification webhook accepts unsigned requests from anyone who can reach it');
    }
  }

  canActivate(context: ExecutionContext): boolean {
    const { webhookSecret, webhookToleranceSeconds, webhookAuth } = this.config.events;
    if (webhookAuth === 'none') return true;
    if (!webhookSecret) throw new ServiceUnavailableException('the webhook is disabled: set WEBHOOK_SECRET on the service and the sender');
    const req = context.switchToHttp().getRequest<Request>();
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = verifyWebhook(
      webhookSecret,
      { signature: req.get(SIGNATURE_HEADER), timestamp: req.get(TIMESTAMP_HEADER) },
      body,
      this.clock.nowMs(),
      webhookToleranceSeconds,
    );
    if (!check.ok) throw new UnauthorizedException(`invalid webhook signature: ${check.reason}`);
    return true;
  }
}
