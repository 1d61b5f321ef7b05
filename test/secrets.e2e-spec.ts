import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { signWebhook } from '../src/auth/webhook-signature';
import { bootApp, eventually, TestApp } from './support/app';
import { jsonl } from './support/delivery';
import { FakeAwsSecrets } from './support/fake-aws-secrets';
import { FakeDownstream } from './support/fake-downstream';
import { FakeIngest } from './support/fake-ingest';
import { mirrorServiceEnv, startService } from './support/process';
import { notification } from './support/s3-events';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

const GET_PARAMETER = 'AmazonSSM.GetParameter';
const GET_SECRET = 'secretsmanager.GetSecretValue';

describe('credentials from SSM Parameter Store and Secrets Manager', () => {
  let s3: S3Client;
  let bucket: string;
  let aws: FakeAwsSecrets;
  let t: TestApp | undefined;

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    aws = await new FakeAwsSecrets().start();
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await aws.stop();
    s3.destroy();
  });

  const base = () => ({
    S3_BUCKET_NAME: bucket,
    S3_ENDPOINT: emulatorEndpoint(),
    SSM_ENDPOINT: aws.endpoint,
    SECRETS_MANAGER_ENDPOINT: aws.endpoint,
    RETRY_BASE_MS: '5',
    RETRY_MAX_MS: '50',
  });

  it('logs in to the downstream with ACCESS_KEY_PARAM / SECRET_KEY_PARAM, reads them once, and follows a rotation with one refetch', async () => {
    const down = await new FakeDownstream().start();
    try {
      aws.setParameter('/copyazure/accesskey', down.accessKey);
      aws.setParameter('/copyazure/secretkey', down.secretKey);
      t = await bootApp({
        ...base(),
        CALL_DETAILS_URL: down.recordsUrl,
        AUTH_URL: down.authUrl,
        ACCESS_KEY_PARAM: '/copyazure/accesskey',
        SECRET_KEY_PARAM: '/copyazure/secretkey',
        MAX_RECORDS_PER_BATCH: '100',
      });
      await put(s3, bucket, 'in/one.jsonl', jsonl(0, 300, 'one'));
      await t.http().post('/api/v1/sync').expect(200);
      await eventually(
        () => down.delivered().length,
        (n) => n === 300,
        15_000,
        'first file delivered',
      );
      await put(s3, bucket, 'in/two.jsonl', jsonl(0, 200, 'two'));
      await t.http().post('/api/v1/sync').expect(200);
      await eventually(
        () => down.delivered().length,
        (n) => n === 500,
        15_000,
        'second file delivered',
      );
      // Read at start, then served from the cache.
      expect(aws.callsTo(GET_PARAMETER, '/copyazure/secretkey')).toBe(1);
      expect(down.logins).toBe(1);

      // Rotation: the downstream now refuses the old password and every token issued with it.
      down.secretKey = 'rotated-secret-key-value';
      aws.setParameter('/copyazure/secretkey', down.secretKey);
      down.revokeTokens();
      await put(s3, bucket, 'in/three.jsonl', jsonl(0, 250, 'three'));
      await t.http().post('/api/v1/sync').expect(200);
      await eventually(
        () => down.delivered().length,
        (n) => n === 750,
        15_000,
        'third file delivered after the rotation',
      );
      expect(aws.callsTo(GET_PARAMETER, '/copyazure/secretkey')).toBe(2);
      expect(down.duplicates()).toBe(0);
      // Shown by name, never by value.
      const config = await t.http().get('/api/v1/config').expect(200);
      expect(config.body.delivery).toMatchObject({ accessKey: 'ssm:/copyazure/accesskey', secretKey: 'ssm:/copyazure/secretkey' });
      expect(config.text).not.toContain(down.secretKey);
      expect(aws.unsigned).toBe(0);
    } finally {
      await down.stop();
    }
  });

  it('posts bundles with the NiFi credentials of NIFI_SECRET_ARN, and reads them again when NiFi refuses them', async () => {
    const ingest = await new FakeIngest().start();
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nifi-credentials-AbCdEf';
    try {
      aws.putSecret(arn, JSON.stringify({ username: ingest.username, password: ingest.password }));
      const archive = `archive-${randomBytes(5).toString('hex')}`;
      await s3.send(new CreateBucketCommand({ Bucket: archive }));
      t = await bootApp({
        ...base(),
        NIFI_ENDPOINT_URL: ingest.url,
        NIFI_SECRET_ARN: arn,
        ARCHIVE_BUCKET_NAME: archive,
        BUNDLE_MAX_FILES: '1',
      });
      await put(s3, bucket, 'b/1.txt', 'one');
      await t.http().post('/api/v1/sync').expect(200);
      await eventually(
        () => ingest.received.length,
        (n) => n === 1,
        15_000,
        'the first bundle',
      );
      ingest.password = 'rotated-nifi-password';
      aws.putSecret(arn, JSON.stringify({ username: ingest.username, password: ingest.password }));
      await put(s3, bucket, 'b/2.txt', 'two');
      await t.http().post('/api/v1/sync').expect(200);
      await eventually(
        () => ingest.received.length,
        (n) => n === 2,
        15_000,
        'the bundle after the rotation',
      );
      expect(aws.callsTo(GET_SECRET, arn)).toBe(2);
      const config = await t.http().get('/api/v1/config').expect(200);
      expect(config.body.bundles).toMatchObject({ username: `secretsmanager:${arn}#username`, password: `secretsmanager:${arn}#password` });
      expect(config.text).not.toContain('rotated-nifi-password');
    } finally {
      await ingest.stop();
    }
  });

  it('accepts webhooks signed with the current or the previous WEBHOOK_SECRET_ARN version, and follows the sender to a new one', async () => {
    const secretId = 'prod/s3-sync/webhook';
    aws.putSecret(secretId, 'the-first-webhook-secret-value');
    t = await bootApp({ ...base(), WEBHOOK_SECRET_ARN: secretId });
    let sent = 0;
    const post = (secret: string) => {
      // A body of its own each time: the same signed request twice is a replay.
      const raw = JSON.stringify(notification({ bucket, key: `w/${sent++}.txt`, op: 'delete' }));
      return t!
        .http()
        .post('/api/v1/s3-notification')
        .set('content-type', 'application/json')
        .set(signWebhook(secret, raw, Date.now()))
        .send(raw);
    };
    await post('the-first-webhook-secret-value').expect(202);
    // The sender already signs with the rotated secret; the service reads it again and accepts it.
    aws.putSecret(secretId, 'the-second-webhook-secret-value');
    await post('the-second-webhook-secret-value').expect(202);
    // Until the rotation ends, the previous version is accepted too.
    await post('the-first-webhook-secret-value').expect(202);
    // A flood of bad signatures does not become a flood of reads (one read again at most every 10 s).
    const reads = aws.callsTo(GET_SECRET, secretId);
    for (let i = 0; i < 5; i++) await post(`forged-secret-number-${i}-of-enough-length`).expect(401);
    expect(aws.callsTo(GET_SECRET, secretId)).toBe(reads);
  });

  it('stops the start with exit code 78 naming a parameter that does not exist', async () => {
    const down = await new FakeDownstream().start();
    try {
      aws.setParameter('/copyazure/accesskey', down.accessKey);
      const service = await startService({
        ...mirrorServiceEnv(bucket, 'secrets'),
        ...base(),
        CALL_DETAILS_URL: down.recordsUrl,
        AUTH_URL: down.authUrl,
        ACCESS_KEY_PARAM: '/copyazure/accesskey',
        SECRET_KEY_PARAM: '/copyazure/missing',
      }).catch((err: Error) => err);
      expect(service).toBeInstanceOf(Error);
      expect((service as Error).message).toContain('service exited during start (code 78');
      expect((service as Error).message).toContain('SSM parameter /copyazure/missing (SECRET_KEY_PARAM) does not exist');
    } finally {
      await down.stop();
    }
  });

  it('refuses both forms of one credential', async () => {
    await expect(bootApp({ ...base(), ACCESS_KEY: 'a-key', ACCESS_KEY_PARAM: '/copyazure/accesskey' })).rejects.toThrow(
      'ACCESS_KEY, ACCESS_KEY_PARAM: give one of them, not both',
    );
  });
});
