import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { AwsModule } from '../aws/aws.module';
import { AppConfig } from '../config/app-config';
import { StateModule } from '../state/state.module';
import { SecretValues } from './secret-values.service';
import { ApiKeyGuard } from './api-key.guard';
import { RateLimitGuard } from './rate-limit.guard';
import { TokenProvider } from './token.provider';
import { WebhookSignatureGuard } from './webhook-signature.guard';

/**
 * Who may call the service and how often (the rate limit, then the API key on every route not marked
 * @Public, the HMAC signature on the webhook), and how the service authenticates downstream (the
 * login token). Global guards run in the order they are provided here.
 */
@Module({
  imports: [
    AwsModule,
    StateModule,
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ name: 'default', ttl: 1000, limit: config.api.ratePerSecond }],
        skipIf: () => config.api.ratePerSecond === 0,
        errorMessage: `too many requests: the limit is ${config.api.ratePerSecond} per second per client (RATE_LIMIT_PER_SECOND)`,
      }),
    }),
  ],
  providers: [
    SecretValues,
    TokenProvider,
    WebhookSignatureGuard,
    { provide: APP_GUARD, useClass: RateLimitGuard },
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
  exports: [TokenProvider, WebhookSignatureGuard, SecretValues],
})
export class AuthModule {}
