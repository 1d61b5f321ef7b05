import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { namesFor, S3SyncStack, S3SyncStackProps } from '../lib/s3-sync-stack';

const root = join(__dirname, '..', '..');
const forwarderCode = join(root, 'lambda', 'dist');

function synth(over: Partial<S3SyncStackProps> = {}): Template {
  const app = new App();
  const stack = new S3SyncStack(app, 'Test', {
    env: { account: '123456789012', region: 'eu-west-1' },
    environment: 'dev',
    suffix: 't1',
    tags: { CostCenter: 'data-platform' },
    imageDirectory: root,
    forwarderCodeDirectory: forwarderCode,
    secrets: {
      webhookSecretName: 'dev/s3-sync/webhook',
      accessKeyParameter: '/copyazure/accesskey',
      secretKeyParameter: '/copyazure/secretkey',
    },
    delivery: { callDetailsUrl: 'https://api.example.com/calls', authUrl: 'https://api.example.com/login' },
    ...over,
  });
  return Template.fromStack(stack);
}

describe('S3SyncStack', () => {
  let dev: Template;
  let prod: Template;
  const names = namesFor('t1');

  beforeAll(() => {
    // The forwarder's bundle is the product's own artifact; build it when this checkout has none.
    if (!existsSync(join(forwarderCode, 'handler.js'))) execFileSync('npm', ['run', 'build:lambda'], { cwd: root, stdio: 'ignore' });
    dev = synth({ glacierAfterDays: 90 });
    prod = synth({ environment: 'prod', notifications: 'both', replicas: 3 });
  });

  it('makes the source bucket versioned, encrypted, private, TLS-only, with the Glacier rule when asked', () => {
    dev.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: names.sourceBucket,
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: { Rules: [Match.objectLike({ Transitions: [{ StorageClass: 'GLACIER', TransitionInDays: 90 }] })] },
    });
    dev.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
    dev.hasResourceProperties('AWS::S3::Bucket', { BucketName: names.archiveBucket, VersioningConfiguration: { Status: 'Enabled' } });
  });

  it('sends ObjectCreated and ObjectRemoved to the event queue, which only that bucket may send to', () => {
    dev.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: Match.arrayWith([
          Match.objectLike({ Events: ['s3:ObjectCreated:*'] }),
          Match.objectLike({ Events: ['s3:ObjectRemoved:*'] }),
        ]),
      },
    });
    dev.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['sqs:SendMessage']),
            Principal: { Service: 's3.amazonaws.com' },
            Condition: { ArnLike: { 'aws:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
    // Both wirings: the forwarder gets the events too.
    prod.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { LambdaFunctionConfigurations: Match.arrayWith([Match.objectLike({ Events: ['s3:ObjectCreated:*'] })]) },
    });
  });

  it('gives the event queue a dead-letter queue of 14 days after 3 receives', () => {
    dev.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: names.eventQueue,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 3 },
    });
    dev.hasResourceProperties('AWS::SQS::Queue', { QueueName: names.eventDlq, MessageRetentionPeriod: 14 * 86_400 });
    dev.hasResourceProperties('AWS::SQS::Queue', { QueueName: names.deliveryDlq, MessageRetentionPeriod: 14 * 86_400 });
  });

  it('creates the three tables the replicas share: on demand, TTL, point-in-time recovery, encrypted, with the status indexes', () => {
    for (const [name, key, ttl] of [
      [names.idempotencyTable, 'id', true],
      [names.breakerTable, 'name', false],
      [names.statusTable, 'pk', true],
    ] as const) {
      dev.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
        TimeToLiveSpecification: ttl ? { AttributeName: 'ttl', Enabled: true } : Match.absent(),
        Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
        SSESpecification: { SSEEnabled: true },
      });
    }
    dev.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: names.statusTable,
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
        }),
        Match.objectLike({ IndexName: 'gsi2' }),
      ],
    });
  });

  it('runs the service on Fargate with its replicas, health checked on /api/v1/health, its environment wired to the resources', () => {
    prod.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 3, LaunchType: 'FARGATE' });
    dev.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/api/v1/health', Port: 80 });
    const env = dev.findResources('AWS::ECS::TaskDefinition');
    const container = Object.values(env)[0].Properties.ContainerDefinitions[0] as { Environment: Array<{ Name: string; Value: unknown }> };
    const vars = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
    expect(vars).toMatchObject({
      STATE_BACKEND: 'dynamodb',
      WEBHOOK_SECRET_ARN: expect.anything(),
      ACCESS_KEY_PARAM: '/copyazure/accesskey',
      SECRET_KEY_PARAM: '/copyazure/secretkey',
      METRICS_EMF: 'true',
      TRUST_PROXY_HOPS: '1',
      CALL_DETAILS_URL: 'https://api.example.com/calls',
    });
    for (const name of [
      'S3_BUCKET_NAME',
      'EVENT_QUEUE_URL',
      'DLQ_URL',
      'IDEMPOTENCY_TABLE_NAME',
      'STATUS_TABLE_NAME',
      'ARCHIVE_BUCKET_NAME',
    ]) {
      expect(vars[name]).toBeDefined();
    }
  });

  it('sets only variables the service knows (read from its own schema), so a renamed setting cannot be lost silently', () => {
    const schema = readFileSync(join(root, 'src', 'config', 'env.schema.ts'), 'utf8');
    const known = new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+)[?!]?(?::|\s*=)/gm)].map((m) => m[1]));
    expect(known.size).toBeGreaterThan(50);
    for (const template of [dev, prod]) {
      const task = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
      const container = task.Properties.ContainerDefinitions[0] as { Environment: Array<{ Name: string }> };
      const unknown = container.Environment.map((e) => e.Name).filter((name) => !known.has(name));
      expect(unknown).toEqual([]);
    }
  });

  it('runs one replica in dev and two in prod unless told otherwise', () => {
    dev.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1 });
    synth({ environment: 'prod' }).hasResourceProperties('AWS::ECS::Service', { DesiredCount: 2 });
  });

  it('names every named resource with the stack suffix, so two stacks live side by side in one account', () => {
    const named: Array<[string, string]> = [
      ['AWS::S3::Bucket', 'BucketName'],
      ['AWS::SQS::Queue', 'QueueName'],
      ['AWS::DynamoDB::GlobalTable', 'TableName'],
      ['AWS::Lambda::Function', 'FunctionName'],
      ['AWS::ECS::Cluster', 'ClusterName'],
      ['AWS::ECS::Service', 'ServiceName'],
      ['AWS::Logs::LogGroup', 'LogGroupName'],
    ];
    const other = synth({ suffix: 'eu2' });
    for (const [type, property] of named) {
      const values = (t: Template) =>
        Object.values(t.findResources(type))
          .map((r) => (r.Properties as Record<string, unknown>)[property])
          .filter((v): v is string => typeof v === 'string');
      expect(values(dev).length).toBeGreaterThan(0);
      for (const v of values(dev)) expect(v).toMatch(/t1/);
      for (const v of values(other)) expect(v).toMatch(/eu2/);
      expect(values(dev).filter((v) => values(other).includes(v))).toEqual([]);
    }
  });

  it('gives the task role only what the service does, on its own resources', () => {
    const policies = dev.findResources('AWS::IAM::Policy');
    const taskPolicy = Object.entries(policies).find(([id]) => id.startsWith('ServiceTaskDefTaskRoleDefaultPolicy'));
    expect(taskPolicy).toBeDefined();
    const statements = (taskPolicy![1].Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>).map(
      (s) => ({
        actions: ([] as string[]).concat(s.Action),
        resource: JSON.stringify(s.Resource),
      }),
    );
    const actions = statements.flatMap((s) => s.actions);
    expect([...new Set(actions)].sort()).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:DescribeTable',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      's3:AbortMultipartUpload',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'secretsmanager:GetSecretValue',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'ssm:GetParameter',
    ]);
    // Nothing on every resource, and no write to the source bucket or delete of a table.
    for (const s of statements) expect(s.resource).not.toBe('"*"');
    expect(actions).not.toContain('s3:DeleteObject*');
    // Writes go to the archive bucket only, never to the source bucket.
    const writes = statements.filter((s) => s.actions.includes('s3:PutObject'));
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(w.resource).toMatch(/Archive/);
    expect(writes.some((w) => /SourceBucket/.test(w.resource))).toBe(false);
    expect(actions.some((a) => a.startsWith('dynamodb:Delete') && a !== 'dynamodb:DeleteItem')).toBe(false);
  });

  it('runs the forwarder with reserved concurrency, active tracing and a dead-letter queue, the secret resolved at deploy', () => {
    dev.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: names.forwarder,
      Runtime: 'nodejs22.x',
      ReservedConcurrentExecutions: 5,
      TracingConfig: { Mode: 'Active' },
      DeadLetterConfig: { TargetArn: Match.anyValue() },
      Environment: { Variables: Match.objectLike({ WEBHOOK_SECRET: '{{resolve:secretsmanager:dev/s3-sync/webhook:SecretString:::}}' }) },
    });
  });

  it('keeps logs 7 days in dev and 30 in prod', () => {
    dev.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: names.logGroup, RetentionInDays: 7 });
    prod.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: names.logGroup, RetentionInDays: 30 });
    prod.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: `/aws/lambda/${names.forwarder}`, RetentionInDays: 30 });
  });

  it('alarms on dead letters, old events, forwarder errors and throttles, 5xx and an open circuit breaker', () => {
    for (const metric of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'Errors',
      'Throttles',
      'HTTPCode_Target_5XX_Count',
    ]) {
      dev.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metric });
    }
    dev.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'CircuitBreakerOpen',
      Namespace: 'S3SyncService',
      Dimensions: [{ Name: 'endpoint', Value: 'https://api.example.com/calls' }],
    });
    expect(Object.keys(dev.findResources('AWS::CloudWatch::Alarm')).length).toBe(8);
  });

  it('tags everything taggable with Environment, Service and the caller’s tags', () => {
    const bucket = Object.values(dev.findResources('AWS::S3::Bucket'))[0] as {
      Properties: { Tags: Array<{ Key: string; Value: string }> };
    };
    expect(bucket.Properties.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Environment', Value: 'dev' },
        { Key: 'Service', Value: 's3-sync-service' },
        { Key: 'CostCenter', Value: 'data-platform' },
      ]),
    );
    dev.hasResourceProperties('AWS::SQS::Queue', { Tags: Match.arrayWith([{ Key: 'Environment', Value: 'dev' }]) });
    // Every resource that carries tags at all carries these (tags as a list, or as a map for a few types).
    let tagged = 0;
    for (const [id, resource] of Object.entries(dev.toJSON().Resources as Record<string, { Properties?: { Tags?: unknown } }>)) {
      const tags = resource.Properties?.Tags;
      if (tags === undefined) continue;
      tagged++;
      const pairs = Array.isArray(tags)
        ? Object.fromEntries((tags as Array<{ Key: string; Value: string }>).map((t) => [t.Key, t.Value]))
        : (tags as Record<string, string>);
      expect({ id, Environment: pairs.Environment, Service: pairs.Service }).toEqual({
        id,
        Environment: 'dev',
        Service: 's3-sync-service',
      });
    }
    expect(tagged).toBeGreaterThan(10);
  });

  it('outputs the API URL, the queues, the tables, the buckets and the forwarder', () => {
    for (const output of [
      'ApiUrl',
      'EventQueueUrl',
      'DeliveryDlqUrl',
      'IdempotencyTableName',
      'CircuitBreakerTableName',
      'StatusTableName',
      'SourceBucketName',
      'ArchiveBucketName',
      'ForwarderArn',
    ]) {
      dev.hasOutput(output, Match.anyValue());
    }
  });

  it('keeps secret values out of the template: only names and dynamic references', () => {
    const json = JSON.stringify(dev.toJSON());
    expect(json).toContain('/copyazure/secretkey');
    expect(json).not.toMatch(/"SecretString"\s*:/);
    expect(json).not.toMatch(/GenerateSecretString/);
  });
});
