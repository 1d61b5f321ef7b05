import { DynamicModule, Global, Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { isAccessPoint } from '../aws/data-path';
import { AppConfig } from './app-config';
import { ConfigController } from './config.controller';
import { EnvironmentVariables, lookalikeVariables, validateEnv } from './env.schema';

export type RawEnv = Record<string, string | undefined>;

/** The validated configuration, and the `@nestjs/config` module that loaded it (its ConfigService holds the same values). */
export interface LoadedConfig {
  config: AppConfig;
  module: DynamicModule;
}

/**
 * The one place that reads the environment. `@nestjs/config` reads `.env` (when present) and runs the
 * schema as its validate hook over the file's values under `env`'s, once, before anything starts: a bad
 * value throws a ConfigValidationError naming the variable and the reason.
 *
 * The validated values are also given to `process.env` for the variables it does not set, as the seed
 * service's dotenv loading did: a `.env` line then reaches libraries that read their own variables.
 */
export async function loadConfig(options: { env?: RawEnv; envFile?: string } = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  let validated: EnvironmentVariables | undefined;
  let lookalikes: Array<{ name: string; closest: string }> = [];
  const module = await ConfigModule.forRoot({
    isGlobal: true,
    envFilePath: options.envFile ?? '.env',
    // The hook merges `env` itself, so that a caller-given environment (the tests') is what is validated.
    validatePredefined: false,
    skipProcessEnv: true,
    cache: true,
    validate: (fromFile: Record<string, unknown>) => {
      const merged = { ...fromFile, ...env };
      validated = validateEnv(merged);
      lookalikes = lookalikeVariables(merged);
      return validated;
    },
  });
  if (!validated) throw new Error('@nestjs/config did not run the validate hook');
  return { config: new AppConfig(validated, lookalikes), module };
}

/**
 * Says at start which set variables the service does not read, so that a typo is not ignored
 * silently, and when events cannot match the bucket as configured.
 */
@Injectable()
class ConfigWarnings implements OnApplicationBootstrap {
  private readonly logger = new Logger('Config');

  constructor(private readonly config: AppConfig) {}

  onApplicationBootstrap(): void {
    for (const { name, closest } of this.config.lookalikes) {
      this.logger.warn({ variable: name, closest }, `${name} is not a variable of this service and is ignored; did you mean ${closest}?`);
    }
    const { bucket, eventBucket } = this.config.s3;
    if (eventBucket === bucket && isAccessPoint(bucket)) {
      this.logger.warn(
        { bucket },
        'S3_BUCKET_NAME is an access point: event notifications name the bucket behind it, and are ignored until EVENT_BUCKET_NAME names that bucket',
      );
    }
  }
}

@Global()
@Module({})
export class AppConfigModule {
  /** `loaded.module` makes `ConfigService<EnvironmentVariables, true>` global; AppConfig is its typed, grouped view. */
  static forRoot({ config, module }: LoadedConfig): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [module],
      controllers: [ConfigController],
      providers: [{ provide: AppConfig, useValue: config }, ConfigWarnings],
      exports: [AppConfig],
    };
  }
}
