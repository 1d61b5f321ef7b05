import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  StackProps,
  Tags,
  aws_cloudwatch as cloudwatch,
  aws_dynamodb as dynamodb,
  aws_ec2 as ec2,
  aws_ecs as ecs,
  aws_ecs_patterns as ecsPatterns,
  aws_elasticloadbalancingv2 as elbv2,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_s3 as s3,
  aws_s3_notifications as s3n,
  aws_secretsmanager as secretsmanager,
  aws_sqs as sqs,
  aws_ssm as ssm,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';

export type Environment = 'dev' | 'prod';
/** How S3 tells the service: straight to its queue, through the signing forwarder Lambda, or both. */
export type NotificationWiring = 'queue' | 'lambda' | 'both';

export interface S3SyncStackProps extends StackProps {
  environment: Environment;
  /** In every resource name, so that several deployments share an account. */
  suffix: string;
  /** Added to the Environment and Service tags on everything taggable. */
  tags?: Record<string, string>;
  notifications?: NotificationWiring;
  /** Days before objects move to Glacier; unset: no lifecycle rule. */
  glacierAfterDays?: number;
  replicas?: number;
  /** The service's image: a directory with its Dockerfile (built and pushed by `cdk deploy`). */
  imageDirectory: string;
  /** The forwarder's bundle (lambda/dist, from `npm run build:lambda`). */
  forwarderCodeDirectory: string;
  /** Secrets, by name only: their values never pass through this program or its outputs. */
  secrets: {
    /** Secrets Manager secret whose string is the webhook secret (service and forwarder). */
    webhookSecretName: string;
    /** SSM SecureString parameters with the downstream credentials. */
    accessKeyParameter?: string;
    secretKeyParameter?: string;
    /** Secrets Manager secret with the NiFi credentials as {"username", "password"}. */
    nifiSecretName?: string;
  };
  delivery?: { callDetailsUrl?: string; authUrl?: string; nifiEndpointUrl?: string };
  /** Oldest event allowed to wait in the queue before the alarm (seconds). */
  maxEventAgeSeconds?: number;
}

/** The resource names: one place, so that the tests and the service's environment agree. */
export function namesFor(suffix: string) {
  const n = (what: string) => `s3-sync-${what}-${suffix}`;
  return {
    sourceBucket: n('source'),
    archiveBucket: n('archive'),
    eventQueue: n('events'),
    eventDlq: n('events-dlq'),
    deliveryDlq: n('delivery-dlq'),
    forwarderDlq: n('forwarder-dlq'),
    idempotencyTable: n('idempotency'),
    breakerTable: n('circuit-breaker'),
    statusTable: n('status'),
    forwarder: n('forwarder'),
    cluster: n('cluster'),
    service: n('service'),
    logGroup: `/s3-sync/${suffix}/service`,
  };
}

const TTL_ATTRIBUTE = 'ttl';
const METRICS_NAMESPACE = 'S3SyncService';

/**
 * The whole deployment of s3-sync-service: the bucket it mirrors and its notifications, the event
 * queue with its dead-letter queue, the DynamoDB tables its replicas share, the archive bucket,
 * the service on ECS Fargate behind a load balancer, the forwarder Lambda, log retention, alarms.
 */
export class S3SyncStack extends Stack {
  constructor(scope: Construct, id: string, props: S3SyncStackProps) {
    super(scope, id, props);
    const names = namesFor(props.suffix);
    const prod = props.environment === 'prod';
    const retain = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = prod ? logs.RetentionDays.ONE_MONTH : logs.RetentionDays.ONE_WEEK;
    Tags.of(this).add('Environment', props.environment);
    Tags.of(this).add('Service', 's3-sync-service');
    for (const [k, v] of Object.entries(props.tags ?? {})) Tags.of(this).add(k, v);

    // --- Buckets ---------------------------------------------------------------------------------
    const bucketDefaults = {
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: retain,
      autoDeleteObjects: !prod,
    };
    const source = new s3.Bucket(this, 'SourceBucket', {
      ...bucketDefaults,
      bucketName: names.sourceBucket,
      lifecycleRules:
        props.glacierAfterDays === undefined
          ? undefined
          : [
              {
                id: 'to-glacier',
                transitions: [{ storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.days(props.glacierAfterDays) }],
              },
            ],
    });
    const archive = new s3.Bucket(this, 'ArchiveBucket', { ...bucketDefaults, bucketName: names.archiveBucket });

    // --- Queues ----------------------------------------------------------------------------------
    const dlqDefaults = { retentionPeriod: Duration.days(14), encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true };
    const eventDlq = new sqs.Queue(this, 'EventDlq', { ...dlqDefaults, queueName: names.eventDlq });
    const eventQueue = new sqs.Queue(this, 'EventQueue', {
      queueName: names.eventQueue,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Above the service's EVENT_QUEUE_VISIBILITY_SECONDS default, so a slow download is not redelivered.
      visibilityTimeout: Duration.seconds(120),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: eventDlq, maxReceiveCount: 3 },
    });
    const deliveryDlq = new sqs.Queue(this, 'DeliveryDlq', { ...dlqDefaults, queueName: names.deliveryDlq });

    // --- Shared state ------------------------------------------------------------------------------
    const table = (id: string, tableName: string, partitionKey: string, ttl: boolean) =>
      new dynamodb.TableV2(this, id, {
        tableName,
        partitionKey: { name: partitionKey, type: dynamodb.AttributeType.STRING },
        billing: dynamodb.Billing.onDemand(),
        timeToLiveAttribute: ttl ? TTL_ATTRIBUTE : undefined,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
        removalPolicy: retain,
      });
    const idempotency = table('IdempotencyTable', names.idempotencyTable, 'id', true);
    const breakers = table('CircuitBreakerTable', names.breakerTable, 'name', false);
    const status = table('StatusTable', names.statusTable, 'pk', true);
    for (const gsi of ['gsi1', 'gsi2']) {
      status.addGlobalSecondaryIndex({
        indexName: gsi,
        partitionKey: { name: `${gsi}pk`, type: dynamodb.AttributeType.STRING },
        sortKey: { name: `${gsi}sk`, type: dynamodb.AttributeType.STRING },
      });
    }

    // --- Secrets, by reference -----------------------------------------------------------------------
    const webhookSecret = secretsmanager.Secret.fromSecretNameV2(this, 'WebhookSecret', props.secrets.webhookSecretName);
    const nifiSecret = props.secrets.nifiSecretName
      ? secretsmanager.Secret.fromSecretNameV2(this, 'NifiSecret', props.secrets.nifiSecretName)
      : undefined;
    const parameters = [props.secrets.accessKeyParameter, props.secrets.secretKeyParameter]
      .filter((p): p is string => p !== undefined)
      .map((name, i) => ssm.StringParameter.fromSecureStringParameterAttributes(this, `CredentialParameter${i}`, { parameterName: name }));

    // --- The service -------------------------------------------------------------------------------
    const vpc = new ec2.Vpc(this, 'Vpc', { maxAzs: 2, natGateways: prod ? 2 : 1 });
    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      clusterName: names.cluster,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const logGroup = new logs.LogGroup(this, 'ServiceLogs', {
      logGroupName: names.logGroup,
      retention: logRetention,
      removalPolicy: retain,
    });
    const environment: Record<string, string> = {
      AWS_REGION: this.region,
      S3_BUCKET_NAME: source.bucketName,
      EVENT_QUEUE_URL: eventQueue.queueUrl,
      DLQ_URL: deliveryDlq.queueUrl,
      STATE_BACKEND: 'dynamodb',
      IDEMPOTENCY_TABLE_NAME: idempotency.tableName,
      CIRCUIT_BREAKER_TABLE_NAME: breakers.tableName,
      STATUS_TABLE_NAME: status.tableName,
      DYNAMODB_TTL_ATTRIBUTE: TTL_ATTRIBUTE,
      ARCHIVE_BUCKET_NAME: archive.bucketName,
      WEBHOOK_SECRET_ARN: webhookSecret.secretArn,
      METRICS_EMF: 'true',
      METRICS_EMF_NAMESPACE: METRICS_NAMESPACE,
      TRUST_PROXY_HOPS: '1',
      LOCAL_DOWNLOAD_DIR: '/data/mirror',
      STATE_DIR: '/data/state',
      LOG_LEVEL: prod ? 'info' : 'debug',
    };
    if (props.delivery?.callDetailsUrl) environment.CALL_DETAILS_URL = props.delivery.callDetailsUrl;
    if (props.delivery?.authUrl) environment.AUTH_URL = props.delivery.authUrl;
    if (props.delivery?.nifiEndpointUrl) environment.NIFI_ENDPOINT_URL = props.delivery.nifiEndpointUrl;
    if (props.secrets.accessKeyParameter) environment.ACCESS_KEY_PARAM = props.secrets.accessKeyParameter;
    if (props.secrets.secretKeyParameter) environment.SECRET_KEY_PARAM = props.secrets.secretKeyParameter;
    if (nifiSecret) environment.NIFI_SECRET_ARN = nifiSecret.secretArn;

    const service = new ecsPatterns.ApplicationLoadBalancedFargateService(this, 'Service', {
      cluster,
      serviceName: names.service,
      desiredCount: props.replicas ?? (prod ? 2 : 1),
      cpu: 1024,
      memoryLimitMiB: 2048,
      publicLoadBalancer: true,
      circuitBreaker: { rollback: true },
      // A rolling deployment never drops below the replicas asked for.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      taskImageOptions: {
        image: ecs.ContainerImage.fromAsset(props.imageDirectory, {
          exclude: ['node_modules', 'dist', 'data', 'infra', 'bench', 'test', 'lambda/dist', '.git', 'cdk.out'],
        }),
        containerPort: 8888,
        environment,
        logDriver: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'service' }),
      },
    });
    service.targetGroup.configureHealthCheck({ path: '/api/v1/health', healthyHttpCodes: '200', interval: Duration.seconds(30) });

    // Least privilege: exactly the calls the service makes (src/aws/*.repository.ts, sqs-consumer,
    // the bundle archive), on these resources only. The grant* helpers would add writes, scans and
    // stream reads it never makes. Batch calls (DeleteMessageBatch...) use their single action's permission.
    const task = service.taskDefinition.taskRole;
    const allow = (actions: string[], resources: string[]) => task.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
    allow(['s3:ListBucket'], [source.bucketArn]);
    allow(['s3:GetObject'], [source.arnForObjects('*')]);
    allow(['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'], [archive.arnForObjects('*')]);
    allow(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'], [eventQueue.queueArn]);
    allow(['sqs:SendMessage'], [deliveryDlq.queueArn, eventDlq.queueArn]);
    const tables = [idempotency, breakers, status];
    allow(
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:DescribeTable'],
      tables.flatMap((t) => [t.tableArn, `${t.tableArn}/index/*`]),
    );
    allow(['secretsmanager:GetSecretValue'], [webhookSecret.secretArn, ...(nifiSecret ? [nifiSecret.secretArn] : [])]);
    if (parameters.length > 0)
      allow(
        ['ssm:GetParameter'],
        parameters.map((p) => p.parameterArn),
      );

    const apiUrl = `http://${service.loadBalancer.loadBalancerDnsName}`;

    // --- The forwarder ----------------------------------------------------------------------------
    const forwarderDlq = new sqs.Queue(this, 'ForwarderDlq', { ...dlqDefaults, queueName: names.forwarderDlq });
    const forwarder = new lambda.Function(this, 'Forwarder', {
      functionName: names.forwarder,
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'handler.handler',
      code: lambda.Code.fromAsset(props.forwarderCodeDirectory),
      timeout: Duration.seconds(30),
      memorySize: 256,
      reservedConcurrentExecutions: prod ? 50 : 5,
      tracing: lambda.Tracing.ACTIVE,
      deadLetterQueue: forwarderDlq,
      retryAttempts: 2,
      logGroup: new logs.LogGroup(this, 'ForwarderLogs', {
        logGroupName: `/aws/lambda/${names.forwarder}`,
        retention: logRetention,
        removalPolicy: retain,
      }),
      environment: {
        API_ENDPOINT: apiUrl,
        // A dynamic reference, resolved by CloudFormation at deploy: the value is not in the template.
        WEBHOOK_SECRET: SecretValue.secretsManager(props.secrets.webhookSecretName).unsafeUnwrap(),
        TIMEOUT_SECONDS: '10',
        RETRY_ATTEMPTS: '3',
      },
    });

    const wiring = props.notifications ?? 'queue';
    for (const event of [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED]) {
      if (wiring !== 'lambda') source.addEventNotification(event, new s3n.SqsDestination(eventQueue));
      if (wiring !== 'queue') source.addEventNotification(event, new s3n.LambdaDestination(forwarder));
    }

    // --- Alarms ------------------------------------------------------------------------------------
    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string) =>
      new cloudwatch.Alarm(this, id, {
        alarmName: `s3-sync-${props.suffix}-${id}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const visible = (q: sqs.Queue) => q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' });
    alarm('EventDlqNotEmpty', visible(eventDlq), 1, 'S3 events failed three times and wait in the event dead-letter queue');
    alarm('DeliveryDlqNotEmpty', visible(deliveryDlq), 1, 'Messages the service could not handle wait in the delivery dead-letter queue');
    alarm('ForwarderDlqNotEmpty', visible(forwarderDlq), 1, 'Notifications the forwarder could not post wait in its dead-letter queue');
    alarm(
      'EventQueueOldMessage',
      eventQueue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      props.maxEventAgeSeconds ?? 300,
      'Events wait in the queue longer than expected: the service is behind or down',
    );
    alarm('ForwarderErrors', forwarder.metricErrors({ period: Duration.minutes(5) }), 1, 'The forwarder Lambda failed');
    alarm('ForwarderThrottles', forwarder.metricThrottles({ period: Duration.minutes(5) }), 1, 'The forwarder Lambda was throttled');
    alarm(
      'LoadBalancer5xx',
      service.loadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: Duration.minutes(5) }),
      5,
      'The service answered 5xx',
    );
    if (props.delivery?.callDetailsUrl) {
      const u = new URL(props.delivery.callDetailsUrl);
      alarm(
        'CircuitBreakerOpen',
        new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: 'CircuitBreakerOpen',
          dimensionsMap: { endpoint: `${u.protocol}//${u.host}${u.pathname}` },
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        1,
        'The downstream circuit breaker is open: deliveries wait',
      );
    }

    // --- Outputs -----------------------------------------------------------------------------------
    const out = (id: string, value: string) => new CfnOutput(this, id, { value });
    out('ApiUrl', `${apiUrl}/api/v1`);
    out('EventQueueUrl', eventQueue.queueUrl);
    out('EventDlqUrl', eventDlq.queueUrl);
    out('DeliveryDlqUrl', deliveryDlq.queueUrl);
    out('IdempotencyTableName', idempotency.tableName);
    out('CircuitBreakerTableName', breakers.tableName);
    out('StatusTableName', status.tableName);
    out('SourceBucketName', source.bucketName);
    out('ArchiveBucketName', archive.bucketName);
    out('ForwarderArn', forwarder.functionArn);
  }
}
