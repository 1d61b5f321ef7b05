import { DynamicModule, Global, Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { AppConfig } from './app-config';
import { ConfigController } from './config.controller';
import { lookalikeVariables, validateEnv } from './env.schema';

export type RawEnv = Record<string, string | undefined>;

/**
 * The one place that reads the environment: `.env` (when present) under the real environment,
 * validated once. A bad value throws before anything starts, naming the variable and the reason.
 */
export function loadConfig(env: RawEnv = process.env, envFile = '.env'): AppConfig {
  const fromFile = existsSync(envFile) ? parse(readFileSync(envFile)) : {};
  const merged = { ...fromFile, ...env };
  return new AppConfig(validateEnv(merged), lookalikeVariables(merged));
}

/** Says at start which set variables the service does not read, so that a typo is not ignored silently. */
@Injectable()
class ConfigWarnings implements OnApplicationBootstrap {
  private readonly logger = new Logger('Config');

  constructor(private readonly config: AppConfig) {}

  onApplicationBootstrap(): void {
    for (const { name, closest } of this.config.lookalikes) {
      this.logger.warn({ variable: name, closest }, `${name} is not a variable of this service and is ignored; did you mean ${closest}?`);
    }
  }
}

@Global()
@Module({})
export class AppConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      controllers: [ConfigController],
      providers: [{ provide: AppConfig, useValue: config }, ConfigWarnings],
      exports: [AppConfig],
    };
  }
}
