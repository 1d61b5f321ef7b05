import { INestApplication, ShutdownSignal, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { AppExceptionFilter } from './common/app-exception.filter';
import { Clock } from './common/clock';
import { LoadedConfig } from './config/config.module';
import { SERVICE_NAME, SERVICE_VERSION } from './status/service-info';
import { WEBHOOK_PATH } from './auth/webhook-signature';
import { markUnsignedBeforeBody, refusedBeforeBody } from './auth/webhook-signature.guard';
import typeis from 'type-is';
import { requestSpans } from './tracing/start-tracing';
import type { IncomingMessage } from 'node:http';

/** Builds the fully configured application; main.ts and the e2e tests both boot it through here. */
export interface AppOptions {
  clock?: Clock;
  /** Server spans for every request (default: when OTEL_EXPORTER_OTLP_ENDPOINT is set). */
  tracing?: boolean;
  /** Run when the application shuts down, after its own hooks. */
  atShutdown?: () => Promise<void>;
}

export async function createApp(loaded: LoadedConfig, options: AppOptions = {}): Promise<INestApplication> {
  const { config } = loaded;
  // Body parsers are registered here, in order: the webhook needs its raw bytes to check the signature.
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(loaded, options), {
    bufferLogs: true,
    bodyParser: false,
    // A failure to build the application throws to the caller (main.ts says why and exits), instead of Nest's exit(1).
    abortOnError: false,
  });
  // First, so that every later middleware (the body parsers too) and handler runs inside the request's span.
  if (options.tracing ?? config.tracing.endpoint !== undefined) app.use(requestSpans);
  app.use(WEBHOOK_PATH, markUnsignedBeforeBody(config, app.get(Clock)));
  // The webhook's body is read raw (its signature covers the bytes), and not at all when its headers already fail.
  const isWebhook = (req: IncomingMessage): boolean => (req.url ?? '').startsWith(WEBHOOK_PATH);
  app.useBodyParser('raw', {
    type: (req: IncomingMessage) => isWebhook(req) && !refusedBeforeBody(req),
    limit: config.events.webhookMaxBodyBytes,
  });
  app.useBodyParser('json', { type: (req: IncomingMessage) => !isWebhook(req) && Boolean(typeis(req, ['application/json'])) });
  app.useBodyParser('urlencoded', {
    extended: true,
    type: (req: IncomingMessage) => !isWebhook(req) && Boolean(typeis(req, ['application/x-www-form-urlencoded'])),
  });
  app.useLogger(app.get(Logger));
  app.set('trust proxy', config.api.trustProxyHops > 0 ? config.api.trustProxyHops : false);
  if (config.api.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.api.corsOrigins,
      methods: ['GET', 'HEAD', 'POST'],
      allowedHeaders: ['content-type', 'x-api-key', 'x-request-id'],
      exposedHeaders: ['retry-after', 'content-disposition', 'x-request-id'],
      maxAge: 600,
    });
  }
  app.disable('x-powered-by');
  app.use(helmet({ contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'validator.swagger.io'] } } }));
  app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true }));
  app.useGlobalFilters(new AppExceptionFilter());
  // process.exit after the hooks, so that pino flushes and the exit status is 0 for a clean stop.
  // Every signal Nest knows stops the service cleanly, except SIGHUP when it reopens the log file.
  const signals = Object.values(ShutdownSignal).filter((s) => !(s === ShutdownSignal.SIGHUP && config.log.file));
  app.enableShutdownHooks(signals, { useProcessExit: true });

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(SERVICE_NAME)
      .setDescription('Mirrors an S3 bucket to a local directory. Full syncs on a schedule or on demand, file listing and download.')
      .setVersion(SERVICE_VERSION)
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'api-key')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
