import { applyDecorators } from '@nestjs/common';
import { plainToInstance, Transform } from 'class-transformer';
import { validateCronExpression } from 'cron';
import { resolve } from 'node:path';
import { filterPatternProblem, splitPatterns } from '../common/key-filter';
import { isStrictlyInside } from '../common/object-key';
import { chooseDataPath, isAccessPointArn, type DataPathInput, type DataPathSetting } from '../aws/data-path';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  getMetadataStorage,
  registerDecorator,
  validateSync,
  ValidationError,
} from 'class-validator';

function IsCronExpression(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isCronExpression',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) => typeof value === 'string' && validateCronExpression(value).valid,
        defaultMessage: () => 'must be a valid cron expression (5 or 6 fields, e.g. "0 */15 * * * *")',
      },
    });
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A bucket name, an access point alias (which S3 takes as one), or an access point ARN. */
function IsBucketOrAccessPoint(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isBucketOrAccessPoint',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) => typeof value === 'string' && (BUCKET_NAME.test(value) || isAccessPointArn(value)),
        defaultMessage: () =>
          'must be a valid S3 bucket name, an access point alias (name-…-s3alias) or an access point ARN (arn:aws:s3:<region>:<account>:accesspoint/<name>)',
      },
    });
}

const STATE_BACKENDS = ['sqlite', 'dynamodb'] as const;
const SSM_PARAMETER = /^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/|\/)?[A-Za-z0-9_.\-/]{1,2048}$/;
const SECRET_ID = /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$/;
const WEBHOOK_AUTH_MODES = ['hmac', 'none'] as const;
const trimmedLower = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim().toLowerCase() : value);

/** Python logging's names for pino's levels. */
const PYTHON_LOG_LEVELS: Record<string, string> = { warning: 'warn', critical: 'fatal' };
const toLogLevel = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return PYTHON_LOG_LEVELS[v] ?? v;
};

const toBoolean = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  return value;
};
const toNumber = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;
const trimmed = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

/**
 * Every environment variable the service reads, with its default. `process.env` is read nowhere
 * else: the rest of the code receives the typed `AppConfig` built from this class.
 */
/** An optional http(s) URL setting: trimmed, host names without a TLD (emulators, services in a VPC) allowed. */
function OptionalHttpUrl(): PropertyDecorator {
  return applyDecorators(
    IsOptional(),
    Transform(trimmed),
    IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }, { message: 'must be an http(s) URL' }),
  );
}

/** A proxy: an http(s) URL, or host:port as curl takes it (then http://). */
function ProxyUrl(): PropertyDecorator {
  return applyDecorators(
    IsOptional(),
    Transform(trimmed),
    IsUrl(
      { require_tld: false, require_protocol: false, protocols: ['http', 'https'] },
      { message: 'must be an http(s) proxy URL or host:port' },
    ),
  );
}

/** What the data path is chosen from (see aws/data-path.ts). */
export function dataPathInput(env: EnvironmentVariables): DataPathInput {
  return {
    setting: env.S3_DATA_PATH,
    bucket: env.S3_BUCKET_NAME,
    region: env.AWS_REGION,
    endpoint: s3Endpoint(env),
    fips: env.AWS_USE_FIPS_ENDPOINT,
    dualStack: env.AWS_USE_DUALSTACK_ENDPOINT,
  };
}

/** S3_ENDPOINT, else the SDKs' own endpoint settings unless they are to be ignored. */
export function s3Endpoint(env: EnvironmentVariables): string | undefined {
  const configured = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ? undefined : (env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  return env.S3_ENDPOINT ?? configured;
}

export class EnvironmentVariables {
  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  @Matches(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, { message: 'must be an AWS region name (e.g. eu-west-1)' })
  AWS_REGION = 'us-east-1';

  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  @IsBucketOrAccessPoint()
  S3_BUCKET_NAME!: string;

  /**
   * Which way listings and object bodies take (see aws/data-path.ts): `auto` takes the signed GETs
   * where they model the endpoint and the SDK elsewhere; `sdk` forces the SDK; `fast` refuses to
   * start where the signed GETs cannot serve.
   */
  @IsIn(['auto', 'fast', 'sdk'])
  @Transform(trimmed)
  S3_DATA_PATH: DataPathSetting = 'auto';

  /** As in the AWS SDKs: FIPS and dual-stack endpoints, resolved by the SDK. */
  @IsBoolean()
  @Transform(toBoolean)
  AWS_USE_FIPS_ENDPOINT = false;

  @IsBoolean()
  @Transform(toBoolean)
  AWS_USE_DUALSTACK_ENDPOINT = false;

  @OptionalHttpUrl()
  S3_ENDPOINT?: string;

  /** The AWS SDKs' own endpoint settings, honoured by the signed GETs as by the SDK: S3's first, then the global one. */
  @OptionalHttpUrl()
  AWS_ENDPOINT_URL_S3?: string;

  @OptionalHttpUrl()
  AWS_ENDPOINT_URL?: string;

  /** A PEM file of certificates to trust for S3 beside Node's own (a private CA in front of S3 or an S3-compatible store). */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  AWS_CA_BUNDLE?: string;

  /**
   * The proxy S3 traffic takes (the signed GETs and the SDK's S3 calls alike), read as curl, Go and the
   * AWS CLI read it: HTTPS_PROXY for https endpoints, HTTP_PROXY for http ones, NO_PROXY for exceptions;
   * the lower-case names count when the upper-case ones are not set. Credentials in the URL are sent
   * to the proxy as Basic auth and never shown.
   */
  @ProxyUrl()
  HTTPS_PROXY?: string;

  @ProxyUrl()
  https_proxy?: string;

  @ProxyUrl()
  HTTP_PROXY?: string;

  @ProxyUrl()
  http_proxy?: string;

  /** Comma- or space-separated: `*`, host names (with their subdomains), IPs, CIDR ranges, each optionally with `:port`. */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  NO_PROXY?: string;

  @IsOptional()
  @IsString()
  @Transform(trimmed)
  no_proxy?: string;

  /** As in the AWS SDKs: true makes AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL count for nothing. */
  @IsBoolean()
  @Transform(toBoolean)
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = false;

  @IsOptional()
  @IsBoolean()
  @Transform(toBoolean)
  S3_FORCE_PATH_STYLE?: boolean;

  @IsString()
  @Transform(trimmed)
  S3_PREFIX = '';

  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  LOCAL_DOWNLOAD_DIR = './data/mirror';

  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  STATE_DIR = './data/state';

  /** Where the shared state lives: `sqlite` (one process, under STATE_DIR) or `dynamodb` (several replicas). */
  @IsIn(STATE_BACKENDS)
  @Transform(trimmedLower)
  STATE_BACKEND: (typeof STATE_BACKENDS)[number] = 'sqlite';

  /** DynamoDB tables (STATE_BACKEND=dynamodb): idempotency claims, circuit breakers, and the status table (ledger, bundles, leases). */
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,255}$/, { message: 'must be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)' })
  IDEMPOTENCY_TABLE_NAME = 's3-sync-idempotency';

  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,255}$/, { message: 'must be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)' })
  CIRCUIT_BREAKER_TABLE_NAME = 's3-sync-circuit-breaker';

  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,255}$/, { message: 'must be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)' })
  STATUS_TABLE_NAME = 's3-sync-status';

  /** The attribute DynamoDB's TTL feature is set to read (epoch seconds). */
  @IsString()
  @Matches(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, { message: 'must be an attribute name' })
  DYNAMODB_TTL_ATTRIBUTE = 'ttl';

  /** DynamoDB endpoint for emulators (dynalite, DynamoDB Local). */
  @OptionalHttpUrl()
  DYNAMODB_ENDPOINT?: string;

  /** Create missing tables at start (local runs and tests; production tables come from the infrastructure stack). */
  @IsBoolean()
  @Transform(toBoolean)
  DYNAMODB_CREATE_TABLES = false;

  /** How long ledger rows are kept after their last update. */
  @Transform(toNumber)
  @Min(1)
  @Max(3650)
  STATUS_TTL_DAYS = 30;

  @Transform(toNumber)
  @Min(0.01)
  @Max(24 * 365)
  SYNC_INTERVAL_HOURS = 1;

  @IsOptional()
  @IsString()
  @Transform(trimmed)
  @IsCronExpression()
  SYNC_CRON?: string;

  @IsBoolean()
  @Transform(toBoolean)
  ENABLE_PERIODIC_SYNC = true;

  @IsBoolean()
  @Transform(toBoolean)
  SYNC_ON_START = false;

  @Transform(toNumber)
  @Min(0)
  /** 0: no limit. */
  MAX_FILE_SIZE_MB = 1000;

  /** Comma-separated rclone globs: when set, only keys matching one are mirrored (see KeyFilter). */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  SYNC_INCLUDE?: string;

  /** Comma-separated rclone globs: keys matching one are neither fetched nor deleted. */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  SYNC_EXCLUDE?: string;

  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  API_HOST = '0.0.0.0';

  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(65535)
  API_PORT = 8888;

  /** Requests per second per client address on /api/v1 (the webhook included, health not); 0: no limit. */
  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  RATE_LIMIT_PER_SECOND = 1000;

  /**
   * How many proxies in front of the service (a load balancer: 1) add X-Forwarded-For: the client
   * address the rate limit and the logs use is then the one they saw. 0: the socket's address.
   */
  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(10)
  TRUST_PROXY_HOPS = 0;

  /** Comma-separated origins (https://ui.example.com) a browser page may call the API from; unset: no CORS. */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  @Matches(/^\s*https?:\/\/[^\s,/]+\s*(,\s*https?:\/\/[^\s,/]+\s*)*$/, {
    message: 'must be comma-separated origins (scheme://host[:port])',
  })
  CORS_ORIGINS?: string;

  /** Also write the metrics as CloudWatch Embedded Metric Format lines to stdout (no agent needed on ECS or Lambda). */
  @IsBoolean()
  @Transform(toBoolean)
  METRICS_EMF = false;

  @Transform(toNumber)
  @Min(1)
  @Max(3600)
  METRICS_EMF_INTERVAL_SECONDS = 60;

  @IsString()
  @Matches(/^[^:\s][^:]{0,254}$/, { message: 'must be a CloudWatch namespace (1 to 255 characters, no colon)' })
  METRICS_EMF_NAMESPACE = 'S3SyncService';

  /**
   * OpenTelemetry's own variable: where spans go (an OTLP/HTTP collector, such as the ADOT collector
   * for X-Ray). Unset: no tracing, and the SDK is not even loaded.
   */
  @OptionalHttpUrl()
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  OTEL_SERVICE_NAME = 's3-sync-service';

  /** pino's levels, or Python logging's (the FastAPI service's `.env`), in any case. */
  @IsIn(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')} (or DEBUG, INFO, WARNING, ERROR, CRITICAL)` })
  @Transform(toLogLevel)
  LOG_LEVEL: (typeof LOG_LEVELS)[number] = 'info';

  @IsIn(LOG_FORMATS)
  @Transform(trimmed)
  LOG_FORMAT: (typeof LOG_FORMATS)[number] = 'json';

  /**
   * A file the log is appended to as well as stdout, as JSON lines; SIGHUP reopens it (logrotate's
   * default `create` mode). Unset by default: in a container stdout is the log.
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @Transform(trimmed)
  LOG_FILE?: string;

  @IsBoolean()
  @Transform(toBoolean)
  SKIP_EXISTING_FILES = true;

  @IsBoolean()
  @Transform(toBoolean)
  VERIFY_FILE_INTEGRITY = true;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(86_400)
  DOWNLOAD_TIMEOUT_SECONDS = 300;

  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(20)
  RETRY_ATTEMPTS = 3;

  /** Each ListObjectsV2 page, its body included: a stalled listing is dropped and retried instead of holding the sync. */
  @Transform(toNumber)
  @Min(1)
  @Max(3600)
  LIST_TIMEOUT_SECONDS = 60;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(512)
  SYNC_CONCURRENCY = 64;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1024)
  MULTIPART_THRESHOLD_MB = 64;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1024)
  MULTIPART_CHUNK_MB = 16;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(64)
  MULTIPART_CONCURRENCY = 4;

  @IsBoolean()
  @Transform(toBoolean)
  DELETE_REMOVED_FILES = true;

  @Transform(toNumber)
  @IsInt()
  @Min(-1)
  MAX_DELETE = 1000;

  @Transform(toNumber)
  @Min(0)
  MIN_FREE_DISK_MB = 512;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  RUN_HISTORY_LIMIT = 200;

  /** Full syncs of disjoint prefixes running at once; one more is answered 429 with the running ids. */
  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(64)
  MAX_CONCURRENT_RUNS = 4;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'must be at least 16 characters' })
  API_KEY?: string;

  /** Shared with the Lambda forwarder: the webhook accepts only bodies signed with it. */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'must be at least 16 characters' })
  WEBHOOK_SECRET?: string;

  /**
   * `hmac`: every notification is signed with WEBHOOK_SECRET. `none`: for senders that cannot sign
   * (the FastAPI service's Lambda); unsigned notifications are accepted, and the start-up log says so.
   */
  @IsIn(WEBHOOK_AUTH_MODES)
  @Transform(trimmedLower)
  WEBHOOK_AUTH: (typeof WEBHOOK_AUTH_MODES)[number] = 'hmac';

  @Transform(toNumber)
  @IsInt()
  @Min(30)
  @Max(3600)
  WEBHOOK_TOLERANCE_SECONDS = 300;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(10_240)
  WEBHOOK_MAX_BODY_KB = 1024;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/[^\s/]+\/\S+$/, { message: 'must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)' })
  EVENT_QUEUE_URL?: string;

  /**
   * The bucket that S3's event notifications name, for events to be applied. By default
   * S3_BUCKET_NAME; an access point (ARN or alias) needs it, because its events name the bucket
   * behind it.
   */
  @IsOptional()
  @Transform(trimmed)
  @Matches(BUCKET_NAME, { message: 'must be a valid S3 bucket name: the one S3 event notifications name' })
  EVENT_BUCKET_NAME?: string;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(10)
  EVENT_QUEUE_BATCH_SIZE = 10;

  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(20)
  EVENT_QUEUE_WAIT_SECONDS = 20;

  @Transform(toNumber)
  @IsInt()
  @Min(2)
  @Max(43_200)
  EVENT_QUEUE_VISIBILITY_SECONDS = 60;

  /**
   * A webhook event whose apply failed is parked and tried again after a full-jitter backoff from
   * this base, doubling up to EVENT_RETRY_MAX_SECONDS; after EVENT_MAX_ATTEMPTS attempts (or at once,
   * for what no retry mends: a file/folder clash, an unsafe key) it is given up until an operator
   * retries it (POST /api/v1/events/parked/retry). Queue events are retried by SQS itself.
   */
  @Transform(toNumber)
  @Min(0.1)
  @Max(86_400)
  EVENT_RETRY_BASE_SECONDS = 30;

  @Transform(toNumber)
  @Min(1)
  @Max(7 * 86_400)
  EVENT_RETRY_MAX_SECONDS = 3600;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1000)
  EVENT_MAX_ATTEMPTS = 10;

  /**
   * Deletes from S3 events are applied only once a HEAD confirms the object is gone, and at most
   * MAX_DELETE of them within this many seconds; beyond that (or for the last mirrored file after
   * others) they are held, given up at once, until an operator retries them or a full sync runs.
   */
  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(7 * 86_400)
  EVENT_DELETE_WINDOW_SECONDS = 3600;

  /** Where unparseable queue messages go; without it the source queue's redrive policy decides. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/[^\s/]+\/\S+$/, { message: 'must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)' })
  DLQ_URL?: string;

  /** Downstream records API; without it the service is a pure mirror. */
  @OptionalHttpUrl()
  CALL_DETAILS_URL?: string;

  /** Login endpoint that exchanges ACCESS_KEY / SECRET_KEY for a JWT; without it requests carry no token. */
  @OptionalHttpUrl()
  AUTH_URL?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  ACCESS_KEY?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  SECRET_KEY?: string;

  /** SSM parameter names (SecureString) holding ACCESS_KEY and SECRET_KEY, instead of the values. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(SSM_PARAMETER, { message: 'must be an SSM parameter name (/path/name) or ARN' })
  ACCESS_KEY_PARAM?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(SSM_PARAMETER, { message: 'must be an SSM parameter name (/path/name) or ARN' })
  SECRET_KEY_PARAM?: string;

  /** Comma-separated glob patterns of keys to deliver (`*` within a folder, `**` across folders). */
  @IsString()
  @Transform(trimmed)
  DELIVERY_PATTERNS = '**';

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(100_000)
  MAX_RECORDS_PER_BATCH = 500;

  @Transform(toNumber)
  @IsInt()
  @Min(1024)
  @Max(64 * 1024 * 1024)
  MAX_BATCH_BYTES = 4 * 1024 * 1024;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1000)
  DELIVERY_CONCURRENCY = 50;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(600)
  DELIVERY_TIMEOUT_SECONDS = 30;

  @Transform(toNumber)
  @IsInt()
  @Min(0)
  @Max(20)
  MAX_RETRIES = 3;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(60_000)
  RETRY_BASE_MS = 200;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(600_000)
  RETRY_MAX_MS = 30_000;

  /**
   * A batch the downstream cannot take because it is unavailable (network errors, timeouts, 408,
   * 429, 5xx) keeps waiting for the breaker's probe; after this long it becomes a dead letter, so
   * that one poison batch cannot hold its file forever.
   */
  @Transform(toNumber)
  @Min(0)
  @Max(10_080)
  DEAD_LETTER_AFTER_MINUTES = 60;

  /**
   * How long a delivery claim lasts without renewal (it is renewed every third of it while the file
   * is delivered): a replica that died is taken over after it.
   */
  @Transform(toNumber)
  @Min(1)
  @Max(3600)
  DELIVERY_CLAIM_LEASE_SECONDS = 60;

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(1000)
  BREAKER_FAILURE_THRESHOLD = 5;

  @Transform(toNumber)
  @Min(0.1)
  @Max(86_400)
  BREAKER_COOLDOWN_SECONDS = 300;

  @Transform(toNumber)
  @Min(0)
  @Max(3650)
  IDEMPOTENCY_TTL_DAYS = 7;

  /** Ingest endpoint (NiFi ListenHTTP style) that receives bundles; bundling is off without it. */
  @OptionalHttpUrl()
  NIFI_ENDPOINT_URL?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  NIFI_USERNAME?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  NIFI_PASSWORD?: string;

  /** A Secrets Manager secret (ARN or name) holding the NiFi credentials as JSON {"username": ..., "password": ...}. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(SECRET_ID, { message: 'must be a Secrets Manager secret ARN or name' })
  NIFI_SECRET_ARN?: string;

  /** A Secrets Manager secret (ARN or name) whose string is the webhook secret; during a rotation its previous version is accepted too. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(SECRET_ID, { message: 'must be a Secrets Manager secret ARN or name' })
  WEBHOOK_SECRET_ARN?: string;

  /** How long a value read from SSM or Secrets Manager is used before it is read again. */
  @Transform(toNumber)
  @Min(0)
  @Max(86_400)
  SECRETS_CACHE_SECONDS = 300;

  /** Endpoints for emulators and VPC endpoints (default: the region's). */
  @OptionalHttpUrl()
  SSM_ENDPOINT?: string;

  @OptionalHttpUrl()
  SECRETS_MANAGER_ENDPOINT?: string;

  /**
   * AWS credentials given in the configuration (the environment or `.env`): used by every AWS client
   * when set, else the SDK's default chain (profiles, SSO, web identity, ECS and EC2 roles).
   */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  AWS_ACCESS_KEY_ID?: string;

  @IsOptional()
  @IsString()
  @Transform(trimmed)
  AWS_SECRET_ACCESS_KEY?: string;

  @IsOptional()
  @IsString()
  @Transform(trimmed)
  AWS_SESSION_TOKEN?: string;

  /** Where every bundle is archived before it is posted (required with NIFI_ENDPOINT_URL). */
  @IsOptional()
  @IsString()
  @Transform(trimmed)
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'must be a valid S3 bucket name' })
  ARCHIVE_BUCKET_NAME?: string;

  @IsString()
  @Transform(trimmed)
  ARCHIVE_PREFIX = 'bundles/';

  /** Comma-separated globs of keys that go into bundles. */
  @IsString()
  @Transform(trimmed)
  BUNDLE_PATTERNS = '**';

  @Transform(toNumber)
  @IsInt()
  @Min(1)
  @Max(100_000)
  BUNDLE_MAX_FILES = 100;

  @Transform(toNumber)
  @Min(0.001)
  @Max(100_000)
  BUNDLE_MAX_MB = 64;

  @Transform(toNumber)
  @Min(0.1)
  @Max(86_400)
  BUNDLE_MAX_AGE_SECONDS = 60;

  @IsIn(['tar', 'concat'])
  @Transform(trimmed)
  BUNDLE_FORMAT: 'tar' | 'concat' = 'tar';

  /** Bundles up to this size are built in memory; larger ones are spooled to a file under STATE_DIR. */
  @Transform(toNumber)
  @Min(0)
  @Max(4096)
  BUNDLE_SPOOL_MEMORY_MB = 16;

  /** SQS endpoint for S3-compatible set-ups (defaults to the queue URL's own host). */
  @OptionalHttpUrl()
  SQS_ENDPOINT?: string;
}

export type Env = EnvironmentVariables;

function describe(errors: ValidationError[], parent = ''): string[] {
  return errors.flatMap((e) => {
    const name = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((msg) => {
      const reason = msg.startsWith(`${e.property} `) ? msg.slice(e.property.length + 1) : msg;
      return `${name}: ${reason} (got ${JSON.stringify(redactIfSecret(e.property, e.value))})`;
    });
    return [...own, ...describe(e.children ?? [], name)];
  });
}

function redactIfSecret(name: string, value: unknown): unknown {
  return /KEY|SECRET|PASSWORD|TOKEN/i.test(name) && value !== undefined ? '***' : value;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

/** Validates raw environment values; throws a ConfigValidationError naming every bad variable. */
export function validateEnv(raw: Record<string, unknown>): EnvironmentVariables {
  // Empty strings mean "unset" so that `.env` lines like `S3_ENDPOINT=` fall back to defaults.
  const present = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''));
  const env = plainToInstance(EnvironmentVariables, present, { exposeDefaultValues: true });
  const errors = validateSync(env, { skipMissingProperties: false, forbidUnknownValues: false });
  const problems = describe(errors);
  if (Boolean(env.AWS_ACCESS_KEY_ID) !== Boolean(env.AWS_SECRET_ACCESS_KEY))
    problems.push('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: give both or neither (neither: the SDK default credential chain)');
  for (const [value, reference] of [
    ['ACCESS_KEY', 'ACCESS_KEY_PARAM'],
    ['SECRET_KEY', 'SECRET_KEY_PARAM'],
    ['NIFI_USERNAME', 'NIFI_SECRET_ARN'],
    ['NIFI_PASSWORD', 'NIFI_SECRET_ARN'],
    ['WEBHOOK_SECRET', 'WEBHOOK_SECRET_ARN'],
  ] as const) {
    if (env[value] !== undefined && env[reference] !== undefined) problems.push(`${value}, ${reference}: give one of them, not both`);
  }
  problems.push(...crossFieldProblems(env));
  if (env.NIFI_ENDPOINT_URL && !env.ARCHIVE_BUCKET_NAME)
    problems.push('ARCHIVE_BUCKET_NAME: is required when NIFI_ENDPOINT_URL is set (bundles are archived before they are posted)');
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return env;
}

const URL_VARIABLES = [
  'S3_ENDPOINT',
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL',
  'DYNAMODB_ENDPOINT',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'EVENT_QUEUE_URL',
  'DLQ_URL',
  'CALL_DETAILS_URL',
  'AUTH_URL',
  'NIFI_ENDPOINT_URL',
  'SSM_ENDPOINT',
  'SECRETS_MANAGER_ENDPOINT',
  'SQS_ENDPOINT',
] as const satisfies ReadonlyArray<keyof EnvironmentVariables>;

function hasUserInfo(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/** Settings that are each valid but do not work together: said at start, never found out at the first delivery. */
function crossFieldProblems(env: EnvironmentVariables): string[] {
  const problems: string[] = [];
  try {
    if (typeof env.S3_BUCKET_NAME === 'string') chooseDataPath(dataPathInput(env));
  } catch (err) {
    problems.push(`S3_DATA_PATH: ${(err as Error).message}`);
  }
  const mirror = resolve(env.LOCAL_DOWNLOAD_DIR ?? '');
  const state = resolve(env.STATE_DIR ?? '');
  if (state === mirror || isStrictlyInside(mirror, state)) {
    problems.push('STATE_DIR, LOCAL_DOWNLOAD_DIR: the state may not be inside the mirror (bucket objects would overwrite it)');
  }
  for (const name of URL_VARIABLES) {
    const value = env[name];
    if (typeof value === 'string' && hasUserInfo(value)) {
      problems.push(
        `${name}: credentials in the URL would travel into logs and error messages; give them as ACCESS_KEY / SECRET_KEY (the login) or NIFI_USERNAME / NIFI_PASSWORD (the ingest endpoint)`,
      );
    }
  }
  const hasKey = env.ACCESS_KEY !== undefined || env.ACCESS_KEY_PARAM !== undefined;
  const hasSecret = env.SECRET_KEY !== undefined || env.SECRET_KEY_PARAM !== undefined;
  if (env.AUTH_URL && !(hasKey && hasSecret)) {
    problems.push(
      'AUTH_URL, ACCESS_KEY, SECRET_KEY: a login needs both credentials (ACCESS_KEY or ACCESS_KEY_PARAM, SECRET_KEY or SECRET_KEY_PARAM)',
    );
  }
  if (!env.AUTH_URL && (hasKey || hasSecret))
    problems.push('ACCESS_KEY, SECRET_KEY, AUTH_URL: credentials are only used to log in at AUTH_URL, which is not set');
  if (env.AUTH_URL && !env.CALL_DETAILS_URL)
    problems.push('AUTH_URL, CALL_DETAILS_URL: the login is for delivering to CALL_DETAILS_URL, which is not set');
  if ((env.NIFI_USERNAME === undefined) !== (env.NIFI_PASSWORD === undefined)) {
    problems.push('NIFI_USERNAME, NIFI_PASSWORD: give both or neither');
  }
  if (env.RETRY_BASE_MS > env.RETRY_MAX_MS)
    problems.push(`RETRY_BASE_MS, RETRY_MAX_MS: the base (${env.RETRY_BASE_MS}) is above the cap (${env.RETRY_MAX_MS})`);
  for (const name of ['SYNC_INCLUDE', 'SYNC_EXCLUDE'] as const) {
    for (const pattern of splitPatterns(env[name])) {
      const problem = filterPatternProblem(pattern);
      if (problem) problems.push(`${name}: pattern "${pattern}": ${problem}`);
    }
  }
  for (const name of ['DELIVERY_PATTERNS', 'BUNDLE_PATTERNS'] as const) {
    if (typeof env[name] === 'string' && env[name].split(',').every((p) => p.trim() === '')) {
      problems.push(`${name}: matches nothing (give at least one pattern, e.g. **)`);
    }
  }
  return problems;
}

/** Every variable the service reads, from the schema's own metadata: one list, never restated. */
export function knownVariables(): string[] {
  const metadata = getMetadataStorage().getTargetValidationMetadatas(EnvironmentVariables, '', true, false);
  return [...new Set(metadata.map((m) => m.propertyName))];
}

/** Prefixes of the service's own variables: a set variable that starts with one and is unknown is likely a typo. */
const OWN_PREFIXES = [
  'S3_',
  'SYNC_',
  'DELIVERY_',
  'BUNDLE_',
  'NIFI_',
  'WEBHOOK_',
  'EVENT_QUEUE_',
  'DYNAMODB_',
  'STATE_',
  'API_',
  'LOG_',
  'BREAKER_',
  'RETRY_',
  'MULTIPART_',
  'ARCHIVE_',
  'SECRETS_',
  'SSM_',
  'OTEL_',
  'METRICS_',
  'RATE_',
  'CORS_',
];

/**
 * Variables that look like the service's own but are not (same prefix, or a near miss of a known
 * name), each with the closest known name: `.env` lines that would otherwise be ignored silently.
 */
export function lookalikeVariables(env: Record<string, unknown>): Array<{ name: string; closest: string }> {
  const known = knownVariables();
  const knownSet = new Set(known);
  const found: Array<{ name: string; closest: string }> = [];
  for (const name of Object.keys(env)) {
    if (knownSet.has(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    let closest = known[0];
    let best = Infinity;
    for (const k of known) {
      const d = editDistance(name, k);
      if (d < best) [best, closest] = [d, k];
    }
    if ((best <= 2 && name.length >= 6) || OWN_PREFIXES.some((p) => name.startsWith(p))) found.push({ name, closest });
  }
  return found;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}
