import { DynamicModule, Global, Module } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { AppConfig } from './app-config';
import { ConfigController } from './config.controller';
import { validateEnv } from './env.schema';

export type RawEnv = Record<string, string | undefined>;

/**
 * The one place that reads the environment: `.env` (when present) under the real environment,
 * validated once. A bad value throws before anything starts, naming the variable and the reason.
 */
export function loadConfig(env: RawEnv = process.env, envFile = '.env'): AppConfig {
  const fromFile = existsSync(envFile) ? parse(readFileSync(envFile)) : {};
  return new AppConfig(validateEnv({ ...fromFile, ...env }));
}

@Global()
@Module({})
export class AppConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      controllers: [ConfigController],
      providers: [{ provide: AppConfig, useValue: config }],
      exports: [AppConfig],
    };
  }
}
