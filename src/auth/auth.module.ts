import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './api-key.guard';
import { TokenProvider } from './token.provider';
import { WebhookSignatureGuard } from './webhook-signature.guard';

/**
 * Who may call the service (the API key on every route not marked @Public, the HMAC signature on
 * the webhook) and how the service authenticates downstream (the login token).
 */
@Module({
  providers: [TokenProvider, WebhookSignatureGuard, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [TokenProvider, WebhookSignatureGuard],
})
export class AuthModule {}
