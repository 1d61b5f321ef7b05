import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SqsRepository } from '../aws/sqs.repository';
import { Clock } from '../common/clock';
import { errorMessage, isErrno } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { DeadLetter, DeadLetterStore } from '../state/state.ports';

export type { DeadLetter } from '../state/state.ports';

export type NewDeadLetter = Omit<DeadLetter, 'id' | 'at' | 'redrivenAt'>;

/** SQS refuses messages over 256 KiB; bigger payloads are stored beside the mirror's state and referenced. */
const SQS_PAYLOAD_LIMIT = 200 * 1024;
/** DynamoDB refuses items over 400 KB: a larger payload is kept in a file and the letter references it. */
const STORED_PAYLOAD_LIMIT = 300 * 1024;
const LEGACY_FILE = 'dead-letters.jsonl';

/**
 * Where undeliverable data goes, never silently: every dead letter is written to the DeadLetterStore
 * (SQLite, or DynamoDB shared by the replicas), paged by the API and read back by a redrive, and
 * also sent to SQS when DLQ_URL is set.
 */
@Injectable()
export class DeadLetters implements OnModuleInit {
  private readonly logger = new Logger(DeadLetters.name);
  private readonly payloadDir: string;

  constructor(
    private readonly config: AppConfig,
    private readonly sqs: SqsRepository,
    private readonly store: DeadLetterStore,
    private readonly clock: Clock,
  ) {
    this.payloadDir = join(config.state.dir, 'dead-letter-payloads');
  }

  /** Dead letters an earlier version kept in a JSON Lines file under STATE_DIR move into the store once. */
  async onModuleInit(): Promise<void> {
    const file = join(this.config.state.dir, LEGACY_FILE);
    const letters = new Map<string, DeadLetter>();
    try {
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        if (!line.trim()) continue;
        const entry = JSON.parse(line) as DeadLetter | { redriven: string; at: string };
        if ('redriven' in entry) {
          const letter = letters.get(entry.redriven);
          if (letter) letter.redrivenAt = entry.at;
        } else letters.set(entry.id, entry);
      }
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const letter of letters.values()) await this.store.deadLetterAdd(letter);
    await rename(file, `${file}.imported`);
    this.logger.log({ letters: letters.size }, 'dead letters moved from dead-letters.jsonl into the state store');
  }

  async add(letter: NewDeadLetter): Promise<DeadLetter> {
    const full: DeadLetter = { id: randomUUID(), at: this.clock.now().toISOString(), ...letter };
    const stored =
      Buffer.byteLength(full.payload) > STORED_PAYLOAD_LIMIT ? { ...full, payload: '', payloadRef: await this.keepPayload(full) } : full;
    await this.store.deadLetterAdd(stored);
    this.logger.warn(
      { id: full.id, kind: full.kind, fileId: full.fileId, line: full.line, batchNo: full.batchNo, reason: full.reason },
      'dead letter',
    );
    const dlq = this.config.delivery.dlqUrl;
    if (dlq) {
      try {
        let message = JSON.stringify(full);
        if (Buffer.byteLength(message) > SQS_PAYLOAD_LIMIT) {
          message = JSON.stringify({ ...full, payload: undefined, payloadRef: stored.payloadRef ?? (await this.keepPayload(full)) });
        }
        await this.sqs.sendDeadLetter(dlq, message, { reason: full.reason, kind: full.kind, fileId: full.fileId });
      } catch (err) {
        this.logger.error({ id: full.id, err: errorMessage(err) }, 'dead letter kept in the state store only: SQS send failed');
      }
    }
    return stored;
  }

  private async keepPayload(letter: DeadLetter): Promise<string> {
    mkdirSync(this.payloadDir, { recursive: true });
    const payloadRef = join(this.payloadDir, `${letter.id}.json`);
    await writeFile(payloadRef, letter.payload);
    return payloadRef;
  }

  /** Dead letters oldest first, with redriven ones marked. */
  list(offset: number, limit: number): Promise<{ total: number; letters: DeadLetter[] }> {
    return this.store.deadLetterList(offset, limit);
  }

  /** Batches not yet redriven, with their payloads (read back from the file when kept in one). */
  async pendingBatches(limit = 1000): Promise<DeadLetter[]> {
    const letters = await this.store.deadLetterPendingBatches(limit);
    return Promise.all(letters.map(async (l) => (l.payloadRef ? { ...l, payload: await readFile(l.payloadRef, 'utf8') } : l)));
  }

  markRedriven(ids: readonly string[]): Promise<void> {
    return this.store.deadLetterMarkRedriven(ids, this.clock.now());
  }
}
