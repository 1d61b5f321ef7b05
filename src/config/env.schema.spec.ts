import { AppConfig } from './app-config';
import { ConfigValidationError, knownVariables, lookalikeVariables, validateEnv } from './env.schema';

const minimal = { S3_BUCKET_NAME: 'my-bucket' };

function problems(env: Record<string, string>): string[] {
  try {
    validateEnv(env);
  } catch (err) {
    if (err instanceof ConfigValidationError) return err.problems;
    throw err;
  }
  return [];
}

describe('validateEnv', () => {
  it('fills every default from a minimal environment', () => {
    const env = validateEnv(minimal);
    expect(env).toMatchObject({
      AWS_REGION: 'us-east-1',
      S3_PREFIX: '',
      SYNC_INTERVAL_HOURS: 1,
      ENABLE_PERIODIC_SYNC: true,
      MAX_FILE_SIZE_MB: 1000,
      API_PORT: 8888,
      SKIP_EXISTING_FILES: true,
      VERIFY_FILE_INTEGRITY: true,
      RETRY_ATTEMPTS: 3,
      DELETE_REMOVED_FILES: true,
      MAX_DELETE: 1000,
    });
  });

  it('parses numbers and booleans from strings', () => {
    const env = validateEnv({
      ...minimal,
      API_PORT: '8080',
      ENABLE_PERIODIC_SYNC: 'false',
      MAX_FILE_SIZE_MB: '1.5',
      SYNC_CRON: '0 */5 * * * *',
    });
    expect(env.API_PORT).toBe(8080);
    expect(env.ENABLE_PERIODIC_SYNC).toBe(false);
    expect(new AppConfig(env).sync.maxFileBytes).toBe(1.5 * 1024 * 1024);
    expect(env.SYNC_CRON).toBe('0 */5 * * * *');
  });

  it('treats empty values as unset', () => {
    expect(validateEnv({ ...minimal, S3_ENDPOINT: '', API_KEY: '' }).S3_ENDPOINT).toBeUndefined();
  });

  it.each([
    [{}, /^S3_BUCKET_NAME: /],
    [{ ...minimal, S3_BUCKET_NAME: 'Bad_Bucket' }, /^S3_BUCKET_NAME: must be a valid S3 bucket name/],
    [{ ...minimal, S3_BUCKET_NAME: 'arn:aws:s3:::my-bucket' }, /^S3_BUCKET_NAME: .*access point ARN \(arn:aws:s3:<region>/],
    [{ ...minimal, EVENT_BUCKET_NAME: 'arn:aws:s3:::my-bucket' }, /^EVENT_BUCKET_NAME: must be a valid S3 bucket name/],
    [{ ...minimal, API_PORT: 'eighty' }, /^API_PORT: /],
    [{ ...minimal, API_PORT: '70000' }, /^API_PORT: .*65535/],
    [{ ...minimal, ENABLE_PERIODIC_SYNC: 'maybe' }, /^ENABLE_PERIODIC_SYNC: must be a boolean/],
    [{ ...minimal, S3_ENDPOINT: 'localhost:9000' }, /^S3_ENDPOINT: must be an http\(s\) URL/],
    [{ ...minimal, SYNC_CRON: 'every hour' }, /^SYNC_CRON: must be a valid cron expression/],
    [{ ...minimal, LOG_LEVEL: 'loud' }, /^LOG_LEVEL: /],
    [{ ...minimal, SYNC_CONCURRENCY: '0' }, /^SYNC_CONCURRENCY: /],
    [{ ...minimal, API_KEY: 'short' }, /^API_KEY: must be at least 16 characters \(got "\*\*\*"\)/],
  ])('rejects %j naming the variable', (env, pattern) => {
    const found = problems(env as Record<string, string>);
    expect(found.length).toBeGreaterThan(0);
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  it.each([
    ['INFO', 'info'],
    ['WARNING', 'warn'],
    ['warning', 'warn'],
    ['CRITICAL', 'fatal'],
    ['Debug', 'debug'],
    [' error ', 'error'],
  ])('takes LOG_LEVEL=%s in either vocabulary as %s', (given, level) => {
    expect(validateEnv({ ...minimal, LOG_LEVEL: given }).LOG_LEVEL).toBe(level);
  });

  it('wants both AWS credentials or neither, and never echoes them', () => {
    const found = problems({ ...minimal, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    expect(found).toEqual([expect.stringContaining('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: give both or neither')]);
    const config = new AppConfig(validateEnv({ ...minimal, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret-value' }));
    expect(config.awsCredentials).toEqual({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret-value', sessionToken: undefined });
    expect(JSON.stringify(config.redacted())).not.toMatch(/AKIAEXAMPLE|secret-value/);
  });

  it('never echoes a secret value in the error', () => {
    const found = problems({ ...minimal, API_KEY: 'tiny-secret' });
    expect(found.join('\n')).not.toContain('tiny-secret');
  });
});

describe('AppConfig.redacted', () => {
  it('hides the API key', () => {
    const config = new AppConfig(validateEnv({ ...minimal, API_KEY: 'a-very-long-secret-key' }));
    const shown = JSON.stringify(config.redacted());
    expect(shown).not.toContain('a-very-long-secret-key');
    expect(shown).toContain('[redacted]');
  });

  it('shows URLs without user-info or query values, and masks a secret value wherever else it appears', () => {
    const config = new AppConfig(
      validateEnv({
        ...minimal,
        API_KEY: 'the-api-key-of-this-service',
        WEBHOOK_SECRET: 'the-webhook-secret-of-this-service',
        CALL_DETAILS_URL: 'https://api.example.com/calls?api_key=k-123456&tenant=acme',
        // A secret pasted where no one expects one is still masked.
        METRICS_EMF_NAMESPACE: 'the-api-key-of-this-service',
      }),
    );
    const shown = config.redacted() as { delivery: { url: string }; metrics: { emfNamespace: string } };
    expect(shown.delivery.url).toBe('https://api.example.com/calls?api_key=[redacted]&tenant=[redacted]');
    expect(shown.metrics.emfNamespace).toBe('[redacted]');
    const text = JSON.stringify(shown);
    for (const secret of ['the-api-key-of-this-service', 'the-webhook-secret-of-this-service', 'k-123456'])
      expect(text).not.toContain(secret);
  });

  it('defaults to path-style addressing when a custom endpoint is set', () => {
    expect(new AppConfig(validateEnv({ ...minimal, S3_ENDPOINT: 'http://127.0.0.1:9000' })).s3.forcePathStyle).toBe(true);
    expect(new AppConfig(validateEnv(minimal)).s3.forcePathStyle).toBe(false);
  });

  it("takes the S3 endpoint from S3_ENDPOINT, else the SDKs' AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL", () => {
    const s3 = (env: Record<string, string>) => new AppConfig(validateEnv({ ...minimal, ...env })).s3;
    const all = { S3_ENDPOINT: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://b:2', AWS_ENDPOINT_URL: 'http://c:3' };
    expect(s3(all).endpoint).toBe('http://a:1');
    expect(s3({ ...all, S3_ENDPOINT: '' }).endpoint).toBe('http://b:2');
    expect(s3({ AWS_ENDPOINT_URL: 'http://c:3' })).toMatchObject({ endpoint: 'http://c:3', forcePathStyle: true });
    expect(s3({ AWS_ENDPOINT_URL_S3: 'http://b:2', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }).endpoint).toBeUndefined();
    expect(() => validateEnv({ ...minimal, AWS_ENDPOINT_URL_S3: 'minio:9000' })).toThrow(/AWS_ENDPOINT_URL_S3: must be an http\(s\) URL/);
  });

  it('reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the upper-case names first, and shows proxies without credentials', () => {
    const config = (env: Record<string, string>) => new AppConfig(validateEnv({ ...minimal, ...env }));
    expect(config({ https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:2', no_proxy: '.corp, 10.0.0.0/8 localhost' }).s3.proxy).toEqual({
      httpsProxy: 'http://up:2',
      httpProxy: undefined,
      noProxy: ['.corp', '10.0.0.0/8', 'localhost'],
    });
    expect(config({ http_proxy: 'proxy.corp:3128' }).s3.proxy.httpProxy).toBe('proxy.corp:3128');
    const shown = JSON.stringify(config({ HTTPS_PROXY: 'http://relay:hunter22@proxy.corp:3128' }).redacted());
    expect(shown).toContain('http://proxy.corp:3128');
    expect(shown).not.toContain('hunter22');
    expect(problems({ ...minimal, HTTPS_PROXY: 'socks5://proxy.corp:1080' })).toEqual([
      expect.stringMatching(/^HTTPS_PROXY: must be an http\(s\) proxy URL/),
    ]);
  });

  it('decides the data path once, and refuses S3_DATA_PATH=fast where the signed GETs cannot serve', () => {
    expect(new AppConfig(validateEnv({ ...minimal, AWS_REGION: 'cn-north-1' })).s3.dataPath).toEqual({
      kind: 'sdk',
      reason: 'region cn-north-1 is outside the aws partition (amazonaws.com)',
    });
    expect(problems({ ...minimal, AWS_REGION: 'cn-north-1', S3_DATA_PATH: 'fast' })).toEqual([
      'S3_DATA_PATH: S3_DATA_PATH=fast cannot serve this bucket: region cn-north-1 is outside the aws partition (amazonaws.com)',
    ]);
    expect(problems({ ...minimal, S3_DATA_PATH: 'quick' })).toEqual([expect.stringMatching(/^S3_DATA_PATH: /)]);
  });

  it('takes an access point ARN as the bucket, through the SDK, with events for the bucket EVENT_BUCKET_NAME names', () => {
    const arn = 'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports';
    const config = new AppConfig(validateEnv({ ...minimal, S3_BUCKET_NAME: arn, EVENT_BUCKET_NAME: 'reports-bucket' }));
    expect(config.s3).toMatchObject({ bucket: arn, eventBucket: 'reports-bucket', dataPath: { kind: 'sdk' } });
    expect(new AppConfig(validateEnv(minimal)).s3.eventBucket).toBe('my-bucket');
    expect(problems({ ...minimal, S3_BUCKET_NAME: arn, S3_DATA_PATH: 'fast' })).toEqual([
      'S3_DATA_PATH: S3_DATA_PATH=fast cannot serve this bucket: an access point ARN: the SDK derives its endpoint and signing from it',
    ]);
  });
});

describe('lookalike variables', () => {
  it('names a set variable that looks like one of the service but is not, with the closest known name', () => {
    expect(
      lookalikeVariables({
        S3_BUCKT_NAME: 'x',
        SYNC_INTERVAL_HOUR: '2',
        S3_WHATEVER: 'y',
        PATH: '/bin',
        HOME: '/root',
        S3_BUCKET_NAME: 'b',
      }),
    ).toEqual([
      { name: 'S3_BUCKT_NAME', closest: 'S3_BUCKET_NAME' },
      { name: 'SYNC_INTERVAL_HOUR', closest: 'SYNC_INTERVAL_HOURS' },
      { name: 'S3_WHATEVER', closest: expect.any(String) },
    ]);
  });

  it('knows every variable the schema validates', () => {
    expect(knownVariables()).toEqual(expect.arrayContaining(['S3_BUCKET_NAME', 'STATE_BACKEND', 'WEBHOOK_AUTH', 'AWS_ACCESS_KEY_ID']));
  });

  it.each([
    [
      { STATE_DIR: '/srv/mirror/.state', LOCAL_DOWNLOAD_DIR: '/srv/mirror' },
      'STATE_DIR, LOCAL_DOWNLOAD_DIR: the state may not be inside the mirror',
    ],
    [{ STATE_DIR: '/srv/data', LOCAL_DOWNLOAD_DIR: '/srv/data/' }, 'STATE_DIR, LOCAL_DOWNLOAD_DIR: the state may not be inside the mirror'],
    [
      { CALL_DETAILS_URL: 'https://api.example.com/calls', AUTH_URL: 'https://api.example.com/login' },
      'AUTH_URL, ACCESS_KEY, SECRET_KEY: a login needs both credentials',
    ],
    [{ ACCESS_KEY: 'key', SECRET_KEY: 'secret' }, 'ACCESS_KEY, SECRET_KEY, AUTH_URL: credentials are only used to log in at AUTH_URL'],
    [
      { AUTH_URL: 'https://api.example.com/login', ACCESS_KEY: 'k', SECRET_KEY: 's' },
      'AUTH_URL, CALL_DETAILS_URL: the login is for delivering to CALL_DETAILS_URL',
    ],
    [{ NIFI_USERNAME: 'user' }, 'NIFI_USERNAME, NIFI_PASSWORD: give both or neither'],
    [{ RETRY_BASE_MS: '5000', RETRY_MAX_MS: '1000' }, 'RETRY_BASE_MS, RETRY_MAX_MS: the base (5000) is above the cap (1000)'],
    [{ DELIVERY_PATTERNS: ',' }, 'DELIVERY_PATTERNS: matches nothing'],
    [{ SYNC_EXCLUDE: '*.tmp,{a,b' }, 'SYNC_EXCLUDE: pattern "{a,b": a "{" without its "}"'],
    [{ SYNC_INCLUDE: '{{.*}}' }, 'SYNC_INCLUDE: pattern "{{.*}}": regular expressions ({{...}}) are not supported'],
    [{ AWS_REGION: 'Frankfurt' }, 'AWS_REGION: must be an AWS region name (e.g. eu-west-1)'],
    [
      { NIFI_ENDPOINT_URL: 'https://user:pass@nifi.example.com/in', ARCHIVE_BUCKET_NAME: 'archive' },
      'NIFI_ENDPOINT_URL: credentials in the URL',
    ],
    [{ SQS_ENDPOINT: 'http://token@127.0.0.1:4566' }, 'SQS_ENDPOINT: credentials in the URL'],
  ])('refuses settings that do not work together: %j', (env, expected) => {
    expect(problems({ ...minimal, ...env } as Record<string, string>)).toEqual([expect.stringContaining(expected)]);
  });

  it('takes the settings that do work together', () => {
    const delivery = { CALL_DETAILS_URL: 'https://api.example.com/calls', AUTH_URL: 'https://api.example.com/login' };
    expect(problems({ ...minimal, ...delivery, ACCESS_KEY: 'k', SECRET_KEY: 's' })).toEqual([]);
    expect(problems({ ...minimal, ...delivery, ACCESS_KEY_PARAM: '/app/key', SECRET_KEY_PARAM: '/app/secret' })).toEqual([]);
    expect(problems({ ...minimal, STATE_DIR: '/srv/state', LOCAL_DOWNLOAD_DIR: '/srv/mirror', AWS_REGION: 'ap-southeast-2' })).toEqual([]);
    expect(problems({ ...minimal, AWS_REGION: 'us-gov-west-1' })).toEqual([]);
  });
});
