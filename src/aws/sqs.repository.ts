import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Message, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { AppConfig } from '../config/app-config';

export type QueueMessage = Message;

export interface QueueConsumerOptions {
  queueUrl: string;
  batchSize: number;
  waitTimeSeconds: number;
  visibilityTimeout: number;
  /** Resolves with the messages that may be deleted (the rest are redelivered). */
  handleBatch: (messages: QueueMessage[]) => Promise<QueueMessage[]>;
  onError: (err: Error, context: string) => void;
}

/** SQS access: the event queue's consumer (sqs-consumer) and dead-letter sends. */
@Injectable()
export class SqsRepository implements OnApplicationShutdown {
  private client?: SQSClient;

  constructor(private readonly config: AppConfig) {}

  private sqs(): SQSClient {
    this.client ??= new SQSClient({
      region: this.config.s3.region,
      endpoint: this.config.events.sqsEndpoint,
      credentials: this.config.awsCredentials,
      maxAttempts: this.config.sync.retryAttempts + 1,
    });
    return this.client;
  }

  /**
   * A long-polling consumer. While a batch is being handled its visibility is extended every
   * third of the timeout (heartbeat), so a slow download is not handed to a second consumer.
   */
  createConsumer(options: QueueConsumerOptions): Consumer {
    const consumer = Consumer.create({
      queueUrl: options.queueUrl,
      sqs: this.sqs(),
      batchSize: options.batchSize,
      waitTimeSeconds: options.waitTimeSeconds,
      visibilityTimeout: options.visibilityTimeout,
      heartbeatInterval: Math.max(1, Math.floor(options.visibilityTimeout / 3)),
      // A custom endpoint (fauxqs, LocalStack) is reached through the client's endpoint.
      useQueueUrlAsEndpoint: this.config.events.sqsEndpoint === undefined,
      messageSystemAttributeNames: ['ApproximateReceiveCount'],
      handleMessageBatch: options.handleBatch,
      pollingCompleteWaitTimeMs: 5000,
      strictReturn: true,
    });
    consumer.on('error', (err) => options.onError(err, 'queue error'));
    consumer.on('processing_error', (err) => options.onError(err, 'processing error'));
    return consumer;
  }

  async sendDeadLetter(queueUrl: string, body: string, attributes: Record<string, string>): Promise<void> {
    await this.sqs().send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageAttributes: Object.fromEntries(
          Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value.slice(0, 1024) }]),
        ),
      }),
    );
  }

  onApplicationShutdown(): void {
    this.client?.destroy();
  }
}
