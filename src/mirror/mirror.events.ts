import { Injectable, Logger } from '@nestjs/common';
import { errorMessage } from '../common/errors';
import type { FileCommitted, RemoteObject } from './file-version';

export type CommitListener = (committed: FileCommitted) => void;

/**
 * Told when the download of a listed or notified version starts, and when it ends without that
 * version being committed (failed after its retries, or S3 served another version). Awaited, in
 * order, under the key's turn in the work queue: what it records about a version never lands after
 * the commit.
 */
export interface DownloadObserver {
  starting(object: RemoteObject): Promise<void>;
  notCommitted(object: RemoteObject, reason: string): Promise<void>;
}

/**
 * The mirror's outgoing port: what it committed, and the downloads it starts and abandons.
 * Delivery and bundling subscribe in their module's init (see delivery.module.ts); the mirror
 * publishes and knows nothing of them. A subscriber's failure is logged and never fails the
 * download it was told of.
 */
@Injectable()
export class MirrorEvents {
  private readonly logger = new Logger(MirrorEvents.name);
  private readonly commitListeners: CommitListener[] = [];
  private readonly observers: DownloadObserver[] = [];

  onCommitted(listener: CommitListener): void {
    this.commitListeners.push(listener);
  }

  observeDownloads(observer: DownloadObserver): void {
    this.observers.push(observer);
  }

  publishCommitted(committed: FileCommitted): void {
    for (const listener of this.commitListeners) {
      try {
        listener(committed);
      } catch (err) {
        this.logger.error({ fileId: committed.fileId, err: errorMessage(err) }, 'commit listener failed');
      }
    }
  }

  publishStarting(object: RemoteObject): Promise<void> {
    return this.tell((o) => o.starting(object));
  }

  publishNotCommitted(object: RemoteObject, reason: string): Promise<void> {
    return this.tell((o) => o.notCommitted(object, reason));
  }

  private async tell(call: (observer: DownloadObserver) => Promise<void>): Promise<void> {
    for (const observer of this.observers) {
      try {
        await call(observer);
      } catch (err) {
        this.logger.error({ err: errorMessage(err) }, 'download observer failed');
      }
    }
  }
}
