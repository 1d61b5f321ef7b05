import { DynamicModule, Module, OnApplicationShutdown } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AuthModule } from './auth/auth.module';
import { BreakerModule } from './breaker/breaker.module';
import { Clock, SystemClock } from './common/clock';
import { AppConfigModule, LoadedConfig } from './config/config.module';
import { LogDestination } from './config/log-destination';
import { DeliveryModule } from './delivery/delivery.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { MirrorModule } from './mirror/mirror.module';
import { StatusModule } from './status/status.module';
import { SyncModule } from './sync/sync.module';

/** Values that must never reach a log line, wherever they appear in a logged request. */
const REDACT = ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'req.headers["x-amz-security-token"]'];

function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/** What the caller of createApp runs at shutdown (main.ts: flushing the spans). */
class ShutdownTask implements OnApplicationShutdown {
  constructor(private readonly task?: () => Promise<void>) {}

  async onApplicationShutdown(): Promise<void> {
    await this.task?.();
  }
}

@Module({})
export class AppModule {
  static forRoot(loaded: LoadedConfig, options: { clock?: Clock; atShutdown?: () => Promise<void> } = {}): DynamicModule {
    const { config } = loaded;
    const log = new LogDestination(config.log);
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(loaded),
        LoggerModule.forRoot({
          pinoHttp: [
            {
              level: config.log.level,
              genReqId: requestId,
              redact: { paths: REDACT, censor: '[redacted]' },
              customProps: () => ({ service: 's3-sync-service' }),
              autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/api/v1/health') },
            },
            log.stream,
          ],
        }),
        ScheduleModule.forRoot(),
        AuthModule,
        MirrorModule,
        SyncModule,
        DeliveryModule,
        BreakerModule,
        MetricsModule,
        HealthModule,
        StatusModule,
      ],
      providers: [
        { provide: Clock, useValue: options.clock ?? new SystemClock() },
        { provide: LogDestination, useValue: log },
        { provide: ShutdownTask, useValue: new ShutdownTask(options.atShutdown) },
      ],
      exports: [Clock],
      global: true,
    };
  }
}
