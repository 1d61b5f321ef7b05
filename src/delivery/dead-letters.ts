import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SqsRepository } from '../aws/sqs.repository';
import { Clock } from '../common/clock';
import { errorMessage, isErrno } from '../common/errors';
import { AppConfig } from '../config/app-config';

export interface DeadLetter {
  id: string;
  at: string;
  /** `record`: a line that could not be parsed; `batch`: a batch the downstream did not take. */
  kind: 'record' | 'batch';
  fileId: string;
  key: string;
  line?: number;
  batchNo?: number;
  firstLine?: number;
  lastLine?: number;
  reason: string;
  attempts: number;
  /** The raw line, or the batch body as it was sent. */
  payload: string;
  redrivenAt?: string;
}

export type NewDeadLetter = Omit<DeadLetter, 'id' | 'at' | 'redrivenAt'>;

/** SQS refuses messages over 256 KiB; bigger payloads are stored beside the mirror's state and referenced. */
const SQS_PAYLOAD_LIMIT = 200 * 1024;

/**
 * Where undeliverable data goes, never silently: every dead letter is appended to a local JSON
 * Lines file under STATE_DIR (listing and redrive read it), and also sent to SQS when DLQ_URL is set.
 */
@Injectable()
export class DeadLetters {
  private readonly logger = new Logger(DeadLetters.name);
  private readonly file: string;
  private readonly payloadDir: string;
  /** Appends one after the other, so that lines never interleave. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: AppConfig,
    private readonly sqs: SqsRepository,
    private readonly clock: Clock,
  ) {
    this.file = join(config.state.dir, 'dead-letters.jsonl');
    this.payloadDir = join(config.state.dir, 'dead-letter-payloads');
  }

  async add(letter: NewDeadLetter): Promise<DeadLetter> {
    const full: DeadLetter = { id: randomUUID(), at: this.clock.now().toISOString(), ...letter };
    await this.append(full);
    this.logger.warn(
      { id: full.id, kind: full.kind, fileId: full.fileId, line: full.line, batchNo: full.batchNo, reason: full.reason },
      'dead letter',
    );
    const dlq = this.config.delivery.dlqUrl;
    if (dlq) {
      try {
        let message = JSON.stringify(full);
        if (Buffer.byteLength(message) > SQS_PAYLOAD_LIMIT) {
          mkdirSync(this.payloadDir, { recursive: true });
          const payloadRef = join(this.payloadDir, `${full.id}.json`);
          await writeFile(payloadRef, full.payload);
          message = JSON.stringify({ ...full, payload: undefined, payloadRef });
        }
        await this.sqs.sendDeadLetter(dlq, message, { reason: full.reason, kind: full.kind, fileId: full.fileId });
      } catch (err) {
        this.logger.error({ id: full.id, err: errorMessage(err) }, 'dead letter kept locally only: SQS send failed');
      }
    }
    return full;
  }

  /** Dead letters oldest first, with redriven ones marked. */
  async list(offset: number, limit: number): Promise<{ total: number; letters: DeadLetter[] }> {
    const all = await this.readAll();
    return { total: all.length, letters: all.slice(offset, offset + limit) };
  }

  async pendingBatches(): Promise<DeadLetter[]> {
    return (await this.readAll()).filter((l) => l.kind === 'batch' && !l.redrivenAt);
  }

  async markRedriven(ids: readonly string[]): Promise<void> {
    const at = this.clock.now().toISOString();
    for (const id of ids) await this.append({ redriven: id, at });
  }

  private append(entry: object): Promise<void> {
    const next = this.tail.then(() => {
      mkdirSync(this.config.state.dir, { recursive: true });
      return appendFile(this.file, `${JSON.stringify(entry)}\n`);
    });
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async readAll(): Promise<DeadLetter[]> {
    await this.tail;
    const letters = new Map<string, DeadLetter>();
    try {
      const lines = createInterface({ input: createReadStream(this.file), crlfDelay: Infinity });
      for await (const line of lines) {
        if (!line.trim()) continue;
        const entry = JSON.parse(line) as DeadLetter | { redriven: string; at: string };
        if ('redriven' in entry) {
          const letter = letters.get(entry.redriven);
          if (letter) letter.redrivenAt = entry.at;
        } else {
          letters.set(entry.id, entry);
        }
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    return [...letters.values()];
  }
}
