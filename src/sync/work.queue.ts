import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import PQueue from 'p-queue';
import { ShuttingDownError } from '../common/errors';
import { KeyedLock } from '../common/keyed-lock';
import { AppConfig } from '../config/app-config';

/** Real-time changes go before a full sync's backlog: a notification is applied within one download, not after the listing. */
export const PRIORITY = { event: 1, sync: 0 } as const;

/**
 * The one work queue for every change to the mirror, whichever way it came (full sync, webhook,
 * SQS): at most SYNC_CONCURRENCY changes run at once in the whole service, and changes to one key
 * run one after another in the order they were submitted. A key waits for its turn before it takes
 * a slot, so a busy key never holds up others.
 */
@Injectable()
export class WorkQueue implements BeforeApplicationShutdown {
  private readonly queue: PQueue;
  private readonly keys = new KeyedLock();
  private stopping = false;

  constructor(config: AppConfig) {
    this.queue = new PQueue({ concurrency: config.sync.concurrency });
  }

  /** Runs `task` in `key`'s turn; rejects with ShuttingDownError when its slot comes after the shutdown began. */
  run<T>(key: string, task: () => Promise<T>, priority: number = PRIORITY.sync): Promise<T> {
    return this.keys.run(key, () => this.queue.add(() => (this.stopping ? Promise.reject(new ShuttingDownError()) : task()), { priority }));
  }

  /** Changes waiting for a slot. */
  get waiting(): number {
    return this.queue.size;
  }

  get running(): number {
    return this.queue.pending;
  }

  /** Resolves once fewer than `limit` changes wait (backpressure for a listing). */
  waitForRoom(limit: number): Promise<void> {
    return this.queue.onSizeLessThan(limit);
  }

  /** Changes under way finish; those still waiting are refused (each caller keeps them for the next start). */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.queue.onIdle();
  }
}
