import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { SERVICE_VERSION } from './status/service-info';
import { startTracing } from './tracing/start-tracing';
import { loadConfig } from './config/config.module';
import { MissingTableError } from './aws/dynamodb.repository';
import { MissingSecretError } from './aws/secrets.repository';
import { ConfigValidationError } from './config/env.schema';
import { preflight } from './config/preflight';
import { limitHeapGrowth } from './heap-growth';

// Before the application is built, and so before the commit workers start, which share V8's flags.
limitHeapGrowth();

async function bootstrap(): Promise<void> {
  let loaded;
  try {
    loaded = await loadConfig();
    await preflight(loaded.config);
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const { config } = loaded;
  // Before the application is built, so that every span it makes has the SDK behind it.
  const stopTracing = config.tracing.endpoint
    ? await startTracing({ endpoint: config.tracing.endpoint, serviceName: config.tracing.serviceName, version: SERVICE_VERSION })
    : undefined;
  // Spans still buffered are sent before the process ends.
  const app = await createApp(loaded, { atShutdown: stopTracing });
  try {
    await app.listen(config.api.port, config.api.host);
  } catch (err) {
    // A deployment that lacks what the configuration names: say which, and exit as a configuration error.
    if (err instanceof MissingTableError || err instanceof MissingSecretError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('0.0.0.0', 'localhost');
  const logger = new Logger('Bootstrap');
  logger.log({ api: `${url}/api/v1`, docs: `${url}/docs` }, `listening on ${url}`);
  if (!config.api.apiKey && !isLoopback(config.api.host)) {
    logger.warn(
      { host: config.api.host },
      'the API is open: API_HOST is reachable from other machines and no API_KEY is set, so anyone who can reach it may start syncs, read files and see the configuration',
    );
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

void bootstrap();
