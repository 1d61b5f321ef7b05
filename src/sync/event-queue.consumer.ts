import { Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { once } from 'node:events';
import type { Consumer } from 'sqs-consumer';
import { QueueMessage, SqsRepository } from '../aws/sqs.repository';
import { errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { EventShapeError } from './s3-event';
import { S3EventsService } from './s3-events.service';

const STOP_WAIT_MS = 10_000;

/**
 * Real-time sync from an SQS queue that receives the bucket's notifications (EVENT_QUEUE_URL).
 * End-to-end acknowledgement: a message is deleted only once every change in it is committed;
 * a failed message stays on the queue and comes back after its visibility timeout, the others of
 * its batch are deleted. A message that can never be parsed is a poison message: it goes to DLQ_URL
 * with the reason, or, without DLQ_URL, is left to the queue's redrive policy.
 */
@Injectable()
export class EventQueueConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(EventQueueConsumer.name);
  private consumer?: Consumer;

  constructor(
    private readonly config: AppConfig,
    private readonly sqs: SqsRepository,
    private readonly events: S3EventsService,
  ) {}

  onApplicationBootstrap(): void {
    const { queueUrl, queueBatchSize, queueWaitSeconds, queueVisibilitySeconds } = this.config.events;
    if (!queueUrl) return;
    this.consumer = this.sqs.createConsumer({
      queueUrl,
      batchSize: queueBatchSize,
      waitTimeSeconds: queueWaitSeconds,
      visibilityTimeout: queueVisibilitySeconds,
      handleBatch: (messages) => this.handleBatch(messages),
      onError: (err, context) => this.logger.error({ err: errorMessage(err) }, context),
    });
    this.consumer.start();
    this.logger.log({ queueUrl }, 'consuming S3 events from SQS');
  }

  async beforeApplicationShutdown(): Promise<void> {
    const consumer = this.consumer;
    if (!consumer?.status.isRunning) return;
    const stopped = once(consumer, 'stopped');
    consumer.stop();
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  /** Resolves with the messages to delete: the applied ones and the dead-lettered ones. */
  async handleBatch(messages: QueueMessage[]): Promise<QueueMessage[]> {
    const done = await Promise.all(messages.map((m) => this.handle(m)));
    return messages.filter((_, i) => done[i]);
  }

  private async handle(message: QueueMessage): Promise<boolean> {
    try {
      const report = await this.events.applyNow(message.Body ?? '');
      if (report.rejected > 0) {
        const reasons = report.records.filter((r) => r.status === 'rejected').map((r) => r.reason);
        // The accepted changes are applied; the rejected records must not vanish with the message.
        return await this.deadLetter(message, `rejected records: ${reasons.join('; ')}`, true);
      }
      return true;
    } catch (err) {
      if (err instanceof EventShapeError) return this.deadLetter(message, err.message);
      this.logger.warn({ messageId: message.MessageId, err: errorMessage(err) }, 'message left on the queue for redelivery');
      return false;
    }
  }

  /** Whether the message may be deleted from the source queue. */
  private async deadLetter(message: QueueMessage, reason: string, applied = false): Promise<boolean> {
    const { dlqUrl, queueUrl } = this.config.events;
    const context = { messageId: message.MessageId, reason };
    if (!dlqUrl) {
      this.logger.error(
        context,
        applied ? 'message had records that cannot be applied' : 'poison message left to the queue redrive policy',
      );
      return applied;
    }
    try {
      await this.sqs.sendDeadLetter(dlqUrl, message.Body ?? '', {
        reason,
        sourceQueue: queueUrl ?? '',
        sourceMessageId: message.MessageId ?? '',
        receiveCount: message.Attributes?.ApproximateReceiveCount ?? '',
      });
      this.logger.error(context, 'message sent to the dead-letter queue');
      return true;
    } catch (err) {
      this.logger.error({ ...context, err: errorMessage(err) }, 'dead-letter send failed; message left on the queue');
      return false;
    }
  }
}
