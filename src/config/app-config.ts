import { describeSecretRef, SecretRef, secretRef } from './secret-ref';
import { KeyFilter, splitPatterns } from '../common/key-filter';
import { redactDeep } from '../common/redact';
import { resolve } from 'node:path';
import { dataPathInput, EnvironmentVariables, s3Endpoint } from './env.schema';
import { chooseDataPath, type DataPath } from '../aws/data-path';
import { describeProxy, proxyUrl, type ProxySettings } from '../aws/proxy';

const MiB = 1024 * 1024;

/** The typed, grouped view of the configuration that the rest of the code injects. */
export class AppConfig {
  readonly s3: {
    region: string;
    /** A bucket name, an access point alias or an access point ARN: what every S3 call addresses. */
    bucket: string;
    /** The bucket that S3's event notifications name (EVENT_BUCKET_NAME, else the bucket). */
    eventBucket: string;
    endpoint?: string;
    forcePathStyle: boolean;
    prefix: string;
    /** AWS_CA_BUNDLE, resolved: trusted for S3 beside Node's roots, by the signed GETs and the SDK alike. */
    caBundle?: string;
    /** Listings and bodies through the signed GETs or the SDK, and why (see aws/data-path.ts). */
    dataPath: DataPath;
    fips: boolean;
    dualStack: boolean;
    /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY (see aws/proxy.ts). */
    proxy: ProxySettings;
  };
  readonly sync: {
    localDir: string;
    intervalHours: number;
    cron?: string;
    periodic: boolean;
    onStart: boolean;
    /** 0 means no limit. */
    maxFileBytes: number;
    skipExisting: boolean;
    verifyIntegrity: boolean;
    downloadTimeoutMs: number;
    retryAttempts: number;
    concurrency: number;
    multipartThresholdBytes: number;
    multipartChunkBytes: number;
    multipartConcurrency: number;
    deleteRemoved: boolean;
    /** -1 means no limit. */
    maxDelete: number;
    minFreeDiskBytes: number;
    /** Finished runs kept (with their per-object items). */
    runHistory: number;
    /** Full syncs (of disjoint prefixes) running at once in this process. */
    maxConcurrentRuns: number;
    /** One ListObjectsV2 page, body included, per attempt. */
    listTimeoutMs: number;
    /** SYNC_INCLUDE / SYNC_EXCLUDE: keys outside it are neither fetched nor deleted, by syncs and events alike. */
    filter: KeyFilter;
  };
  readonly events: {
    webhookSecret?: SecretRef;
    /** `none`: unsigned notifications are accepted (senders that cannot sign). */
    webhookAuth: 'hmac' | 'none';
    webhookToleranceSeconds: number;
    webhookMaxBodyBytes: number;
    queueUrl?: string;
    queueBatchSize: number;
    queueWaitSeconds: number;
    queueVisibilitySeconds: number;
    dlqUrl?: string;
    sqsEndpoint?: string;
    /** Webhook events whose apply failed: retried with full-jitter backoff, given up after maxAttempts. */
    retry: { baseMs: number; capMs: number; maxAttempts: number };
    /** Deletes from events: at most sync.maxDelete within this window (ms). */
    deleteWindowMs: number;
  };
  readonly delivery: {
    url?: string;
    authUrl?: string;
    accessKey?: SecretRef;
    secretKey?: SecretRef;
    patterns: string[];
    maxRecordsPerBatch: number;
    maxBatchBytes: number;
    concurrency: number;
    timeoutMs: number;
    maxRetries: number;
    retryBaseMs: number;
    retryMaxMs: number;
    /** How long a batch refused as unavailable is tried, across breaker cycles, before it is dead-lettered. */
    deadLetterAfterMs: number;
    claimLeaseMs: number;
    breakerThreshold: number;
    breakerCooldownMs: number;
    idempotencyTtlMs: number;
    dlqUrl?: string;
  };
  readonly bundles: {
    url?: string;
    username?: SecretRef;
    password?: SecretRef;
    archiveBucket?: string;
    archivePrefix: string;
    patterns: string[];
    maxFiles: number;
    maxBytes: number;
    maxAgeMs: number;
    format: 'tar' | 'concat';
    spoolMemoryBytes: number;
  };
  readonly state: {
    dir: string;
    backend: 'sqlite' | 'dynamodb';
    dynamodb: {
      idempotencyTable: string;
      breakerTable: string;
      statusTable: string;
      ttlAttribute: string;
      endpoint?: string;
      createTables: boolean;
    };
    /** How long ledger rows live after their last update. */
    statusTtlMs: number;
  };
  readonly api: {
    host: string;
    port: number;
    apiKey?: string;
    /** Requests per second per client address; 0: no limit. */
    ratePerSecond: number;
    /** Proxy hops in front of the service whose X-Forwarded-For is believed (express's `trust proxy`). */
    trustProxyHops: number;
    /** Origins a browser may call the API from; empty: no CORS headers. */
    corsOrigins: string[];
  };
  /** Static AWS credentials from the configuration; undefined: the SDK's default chain. */
  readonly awsCredentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Reads of SSM parameters and Secrets Manager secrets: how long a value is used, and emulator endpoints. */
  readonly secrets: { cacheMs: number; ssmEndpoint?: string; secretsManagerEndpoint?: string };
  /** OpenTelemetry: spans exported to `endpoint` (OTLP/HTTP) when set. */
  readonly tracing: { endpoint?: string; serviceName: string };
  /** CloudWatch Embedded Metric Format lines on stdout, every `emfIntervalMs`. */
  readonly metrics: { emf: boolean; emfIntervalMs: number; emfNamespace: string };
  /** `file`: the log is also appended there (JSON lines), reopened on SIGHUP for logrotate. */
  readonly log: { level: EnvironmentVariables['LOG_LEVEL']; format: EnvironmentVariables['LOG_FORMAT']; file?: string };

  constructor(
    env: EnvironmentVariables,
    /** Set variables that look like the service's own but are not read (typos), with the closest known name. */
    readonly lookalikes: ReadonlyArray<{ name: string; closest: string }> = [],
  ) {
    const endpoint = s3Endpoint(env);
    this.s3 = {
      region: env.AWS_REGION,
      bucket: env.S3_BUCKET_NAME,
      eventBucket: env.EVENT_BUCKET_NAME ?? env.S3_BUCKET_NAME,
      endpoint,
      // Custom endpoints (MinIO, fauxqs, Ceph...) rarely have wildcard DNS for virtual-host style.
      forcePathStyle: env.S3_FORCE_PATH_STYLE ?? Boolean(endpoint),
      prefix: env.S3_PREFIX,
      caBundle: env.AWS_CA_BUNDLE && resolve(env.AWS_CA_BUNDLE),
      dataPath: chooseDataPath(dataPathInput(env)),
      fips: env.AWS_USE_FIPS_ENDPOINT,
      dualStack: env.AWS_USE_DUALSTACK_ENDPOINT,
      proxy: {
        httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
        httpProxy: env.HTTP_PROXY ?? env.http_proxy,
        noProxy: (env.NO_PROXY ?? env.no_proxy ?? '').split(/[\s,]+/).filter(Boolean),
      },
    };
    this.sync = {
      localDir: resolve(env.LOCAL_DOWNLOAD_DIR),
      intervalHours: env.SYNC_INTERVAL_HOURS,
      cron: env.SYNC_CRON,
      periodic: env.ENABLE_PERIODIC_SYNC,
      onStart: env.SYNC_ON_START,
      maxFileBytes: Math.round(env.MAX_FILE_SIZE_MB * MiB),
      skipExisting: env.SKIP_EXISTING_FILES,
      verifyIntegrity: env.VERIFY_FILE_INTEGRITY,
      downloadTimeoutMs: env.DOWNLOAD_TIMEOUT_SECONDS * 1000,
      retryAttempts: env.RETRY_ATTEMPTS,
      concurrency: env.SYNC_CONCURRENCY,
      multipartThresholdBytes: env.MULTIPART_THRESHOLD_MB * MiB,
      multipartChunkBytes: env.MULTIPART_CHUNK_MB * MiB,
      multipartConcurrency: env.MULTIPART_CONCURRENCY,
      deleteRemoved: env.DELETE_REMOVED_FILES,
      maxDelete: env.MAX_DELETE,
      minFreeDiskBytes: Math.round(env.MIN_FREE_DISK_MB * MiB),
      runHistory: env.RUN_HISTORY_LIMIT,
      maxConcurrentRuns: env.MAX_CONCURRENT_RUNS,
      listTimeoutMs: env.LIST_TIMEOUT_SECONDS * 1000,
      filter: KeyFilter.of(splitPatterns(env.SYNC_INCLUDE), splitPatterns(env.SYNC_EXCLUDE), {
        include: 'SYNC_INCLUDE',
        exclude: 'SYNC_EXCLUDE',
      }),
    };
    this.events = {
      webhookSecret: secretRef('WEBHOOK_SECRET', env.WEBHOOK_SECRET, {
        variable: 'WEBHOOK_SECRET_ARN',
        secretsManager: env.WEBHOOK_SECRET_ARN,
      }),
      webhookAuth: env.WEBHOOK_AUTH,
      webhookToleranceSeconds: env.WEBHOOK_TOLERANCE_SECONDS,
      webhookMaxBodyBytes: env.WEBHOOK_MAX_BODY_KB * 1024,
      queueUrl: env.EVENT_QUEUE_URL,
      queueBatchSize: env.EVENT_QUEUE_BATCH_SIZE,
      queueWaitSeconds: env.EVENT_QUEUE_WAIT_SECONDS,
      queueVisibilitySeconds: env.EVENT_QUEUE_VISIBILITY_SECONDS,
      dlqUrl: env.DLQ_URL,
      sqsEndpoint: env.SQS_ENDPOINT,
      retry: {
        baseMs: env.EVENT_RETRY_BASE_SECONDS * 1000,
        capMs: env.EVENT_RETRY_MAX_SECONDS * 1000,
        maxAttempts: env.EVENT_MAX_ATTEMPTS,
      },
      deleteWindowMs: env.EVENT_DELETE_WINDOW_SECONDS * 1000,
    };
    this.delivery = {
      url: env.CALL_DETAILS_URL,
      authUrl: env.AUTH_URL,
      accessKey: secretRef('ACCESS_KEY', env.ACCESS_KEY, { variable: 'ACCESS_KEY_PARAM', ssm: env.ACCESS_KEY_PARAM }),
      secretKey: secretRef('SECRET_KEY', env.SECRET_KEY, { variable: 'SECRET_KEY_PARAM', ssm: env.SECRET_KEY_PARAM }),
      patterns: splitPatterns(env.DELIVERY_PATTERNS),
      maxRecordsPerBatch: env.MAX_RECORDS_PER_BATCH,
      maxBatchBytes: env.MAX_BATCH_BYTES,
      concurrency: env.DELIVERY_CONCURRENCY,
      timeoutMs: env.DELIVERY_TIMEOUT_SECONDS * 1000,
      maxRetries: env.MAX_RETRIES,
      retryBaseMs: env.RETRY_BASE_MS,
      retryMaxMs: env.RETRY_MAX_MS,
      deadLetterAfterMs: Math.round(env.DEAD_LETTER_AFTER_MINUTES * 60_000),
      claimLeaseMs: Math.round(env.DELIVERY_CLAIM_LEASE_SECONDS * 1000),
      breakerThreshold: env.BREAKER_FAILURE_THRESHOLD,
      breakerCooldownMs: Math.round(env.BREAKER_COOLDOWN_SECONDS * 1000),
      idempotencyTtlMs: Math.round(env.IDEMPOTENCY_TTL_DAYS * 86_400_000),
      dlqUrl: env.DLQ_URL,
    };
    this.bundles = {
      url: env.NIFI_ENDPOINT_URL,
      username: secretRef('NIFI_USERNAME', env.NIFI_USERNAME, {
        variable: 'NIFI_SECRET_ARN',
        secretsManager: env.NIFI_SECRET_ARN,
        field: 'username',
      }),
      password: secretRef('NIFI_PASSWORD', env.NIFI_PASSWORD, {
        variable: 'NIFI_SECRET_ARN',
        secretsManager: env.NIFI_SECRET_ARN,
        field: 'password',
      }),
      archiveBucket: env.ARCHIVE_BUCKET_NAME,
      archivePrefix: env.ARCHIVE_PREFIX,
      patterns: splitPatterns(env.BUNDLE_PATTERNS),
      maxFiles: env.BUNDLE_MAX_FILES,
      maxBytes: Math.round(env.BUNDLE_MAX_MB * MiB),
      maxAgeMs: Math.round(env.BUNDLE_MAX_AGE_SECONDS * 1000),
      format: env.BUNDLE_FORMAT,
      spoolMemoryBytes: Math.round(env.BUNDLE_SPOOL_MEMORY_MB * MiB),
    };
    this.state = {
      dir: resolve(env.STATE_DIR),
      backend: env.STATE_BACKEND,
      dynamodb: {
        idempotencyTable: env.IDEMPOTENCY_TABLE_NAME,
        breakerTable: env.CIRCUIT_BREAKER_TABLE_NAME,
        statusTable: env.STATUS_TABLE_NAME,
        ttlAttribute: env.DYNAMODB_TTL_ATTRIBUTE,
        endpoint: env.DYNAMODB_ENDPOINT,
        createTables: env.DYNAMODB_CREATE_TABLES,
      },
      statusTtlMs: Math.round(env.STATUS_TTL_DAYS * 86_400_000),
    };
    this.api = {
      host: env.API_HOST,
      port: env.API_PORT,
      apiKey: env.API_KEY,
      ratePerSecond: env.RATE_LIMIT_PER_SECOND,
      trustProxyHops: env.TRUST_PROXY_HOPS,
      corsOrigins: splitList(env.CORS_ORIGINS),
    };
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      this.awsCredentials = {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        sessionToken: env.AWS_SESSION_TOKEN,
      };
    }
    this.tracing = { endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME };
    this.secrets = {
      cacheMs: env.SECRETS_CACHE_SECONDS * 1000,
      ssmEndpoint: env.SSM_ENDPOINT,
      secretsManagerEndpoint: env.SECRETS_MANAGER_ENDPOINT,
    };
    this.metrics = {
      emf: env.METRICS_EMF,
      emfIntervalMs: env.METRICS_EMF_INTERVAL_SECONDS * 1000,
      emfNamespace: env.METRICS_EMF_NAMESPACE,
    };
    this.log = { level: env.LOG_LEVEL, format: env.LOG_FORMAT, file: env.LOG_FILE };
  }

  /**
   * The effective configuration as shown by GET /api/v1/config: credentials replaced by where they
   * come from, URLs without user-info or query values, and any secret value masked wherever else it
   * would appear.
   */
  redacted(): Record<string, unknown> {
    const literal = (ref: SecretRef | undefined): string[] => (ref?.source === 'value' ? [ref.value] : []);
    const secrets = [
      ...literal(this.events.webhookSecret),
      ...literal(this.delivery.accessKey),
      ...literal(this.delivery.secretKey),
      ...literal(this.bundles.username),
      ...literal(this.bundles.password),
      ...(this.api.apiKey ? [this.api.apiKey] : []),
      ...[this.s3.proxy.httpsProxy, this.s3.proxy.httpProxy].flatMap(proxyPassword),
      ...(this.awsCredentials ? [this.awsCredentials.secretAccessKey, this.awsCredentials.sessionToken ?? ''] : []),
    ];
    return redactDeep(this.shown(), secrets);
  }

  private shown(): Record<string, unknown> {
    return {
      s3: {
        ...this.s3,
        proxy: {
          ...this.s3.proxy,
          httpsProxy: this.s3.proxy.httpsProxy && withoutUserInfo(this.s3.proxy.httpsProxy),
          httpProxy: this.s3.proxy.httpProxy && withoutUserInfo(this.s3.proxy.httpProxy),
        },
      },
      sync: { ...this.sync, filter: this.sync.filter.describe() },
      events: { ...this.events, retry: { ...this.events.retry }, webhookSecret: describeSecretRef(this.events.webhookSecret) },
      delivery: {
        ...this.delivery,
        accessKey: describeSecretRef(this.delivery.accessKey),
        secretKey: describeSecretRef(this.delivery.secretKey),
      },
      bundles: {
        ...this.bundles,
        username: describeSecretRef(this.bundles.username),
        password: describeSecretRef(this.bundles.password),
      },
      state: { ...this.state, dynamodb: { ...this.state.dynamodb } },
      api: { ...this.api, apiKey: this.api.apiKey ? '[redacted]' : null },
      log: { ...this.log },
      metrics: { ...this.metrics },
      secrets: { ...this.secrets },
      tracing: { ...this.tracing },
      aws: { credentials: this.awsCredentials ? 'configured (redacted)' : 'SDK default chain' },
    };
  }
}

/** A proxy's password, to be masked wherever it would appear. */
function proxyPassword(proxy: string | undefined): string[] {
  if (!proxy) return [];
  try {
    const { password } = proxyUrl(proxy);
    return password ? [decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

function withoutUserInfo(proxy: string): string {
  try {
    return describeProxy(proxyUrl(proxy));
  } catch {
    return '[unparsable]';
  }
}

/** A comma-separated list, trimmed, without empty entries. */
function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
