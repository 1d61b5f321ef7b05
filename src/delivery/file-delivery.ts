import type PQueue from 'p-queue';
import { createReadStream } from 'node:fs';
import { Clock } from '../common/clock';
import { Metrics } from '../metrics/metrics.service';
import { errorMessage } from '../common/errors';
import { isRetryable } from '../common/retryable';
import { CredentialsRefusedError } from '../auth/token.provider';
import type { DeliveryLedger, LedgerEntry } from '../state/state.ports';
import { Batch, batchBody, Batcher } from './batcher';
import { DeadLetters } from './dead-letters.service';
import { Checkpoint, checkpoint, DeliveryProgress } from './ledger-transitions';
import { formatOf, readRecords } from './record-reader';
import { RecordsSink } from './records.sink';
import { inCurrentTrace } from '../tracing/tracing';

export interface FileDeliveryDeps {
  ledger: DeliveryLedger;
  sink: RecordsSink;
  deadLetters: DeadLetters;
  clock: Clock;
  metrics: Metrics;
  /** The service-wide limit on requests in flight (DELIVERY_CONCURRENCY), shared by every file. */
  requests: PQueue;
  maxRecordsPerBatch: number;
  maxBatchBytes: number;
  maxRetries: number;
  deadLetterAfterMs: number;
  /** Pause between two rounds of retries of a batch the downstream could not take. */
  retryMaxMs: number;
}

export interface FileDeliveryResult extends DeliveryProgress {
  deadBatches: number;
}

/**
 * The delivery of one file version's records, from its checkpoint to its last batch: read as a
 * stream, batched, each batch POSTed under `fileId#batchNo` as its Idempotency-Key. Reading waits
 * while every request slot is taken, so memory stays flat however long the file is. Lines that do
 * not parse and batches the downstream refuses become dead letters; the checkpoint moves with every
 * acknowledgement.
 */
export class FileDelivery {
  private readonly progress: DeliveryProgress;
  private readonly checkpoint: Checkpoint;
  private readonly batcher: Batcher;
  /** Only the batches in flight. */
  private readonly inflight = new Set<Promise<void>>();
  private deadBatches = 0;
  /** Why a batch stopped without an outcome (shutdown, claim lost): the file is then not finished. */
  private interrupted: unknown;
  private persisting: Promise<void> = Promise.resolve();

  constructor(
    private readonly start: LedgerEntry,
    private readonly deps: FileDeliveryDeps,
    private readonly signal: AbortSignal,
  ) {
    this.checkpoint = new Checkpoint(start.batchesAcked);
    this.progress = {
      recordsParsed: 0,
      recordsSent: start.recordsSent,
      recordsFailed: start.recordsFailed,
      batchesAcked: start.batchesAcked,
    };
    this.batcher = new Batcher(deps.maxRecordsPerBatch, deps.maxBatchBytes);
  }

  async run(absPath: string): Promise<FileDeliveryResult> {
    const { key } = this.start;
    const parsedCount = this.deps.metrics.records.labels({ outcome: 'parsed' });
    for await (const chunk of readRecords(createReadStream(absPath, { highWaterMark: 256 * 1024 }), formatOf(key))) {
      parsedCount.inc(chunk.length);
      for (const parsed of chunk) {
        this.progress.recordsParsed++;
        // Lines before the checkpoint were handled (sent or dead-lettered) before the restart.
        const handled = this.checkpoint.handledBefore(this.batcher.pendingBatchNo);
        if ('error' in parsed) {
          if (!handled) await this.deadRecord(parsed.line, parsed.error, parsed.raw);
          continue;
        }
        if (!this.batcher.fits(Buffer.byteLength(parsed.json))) {
          if (!handled)
            await this.deadRecord(
              parsed.line,
              `record larger than MAX_BATCH_BYTES (${this.deps.maxBatchBytes})`,
              parsed.json.slice(0, 1024),
            );
          continue;
        }
        const full = this.batcher.add(parsed.json, parsed.line);
        if (full) await this.dispatch(full);
      }
    }
    const last = this.batcher.flush();
    if (last) await this.dispatch(last);
    await Promise.allSettled([...this.inflight]);
    if (this.interrupted !== undefined) throw this.interrupted;
    await this.persisting;
    return { ...this.progress, deadBatches: this.deadBatches };
  }

  private async dispatch(batch: Batch): Promise<void> {
    if (this.checkpoint.handledBefore(batch.batchNo)) return;
    const { requests, clock } = this.deps;
    // Backpressure: the file is not read further while every request slot is taken.
    await requests.onSizeLessThan(1);
    this.signal.throwIfAborted();
    const body = batchBody(batch, clock.now().toISOString());
    const sending: Promise<void> = requests.add(inCurrentTrace(() => this.send(batch, body)));
    this.inflight.add(sending);
    sending.then(
      () => this.inflight.delete(sending),
      (err: unknown) => {
        this.inflight.delete(sending);
        this.interrupted ??= err;
      },
    );
  }

  /**
   * Sends one batch until the downstream takes it. A refusal of the batch itself (4xx) makes it a
   * dead letter at once; an unavailable downstream does not: the batch waits for the breaker (its
   * cooldown and probe) and is sent again, round after round, for DEAD_LETTER_AFTER_MINUTES.
   */
  private async send(batch: Batch, body: string): Promise<void> {
    const { fileId } = this.start;
    const { clock, deadLetterAfterMs } = this.deps;
    const firstTry = clock.nowMs();
    let attempts = 0;
    for (;;) {
      try {
        attempts++;
        await this.deps.sink.send(body, `${fileId}#${batch.batchNo}`, this.signal);
        this.settle(batch, true);
        return;
      } catch (err) {
        if (this.signal.aborted) throw err;
        // Refused credentials are the operator's to mend, not the batch's fault: it waits, however long.
        const waitsForCredentials = err instanceof CredentialsRefusedError;
        if (waitsForCredentials || (isRetryable(err) && clock.nowMs() - firstTry < deadLetterAfterMs)) {
          await clock.sleep(this.deps.retryMaxMs, this.signal);
          continue;
        }
        await this.deadLetter(batch, body, err, attempts);
        return;
      }
    }
  }

  private async deadLetter(batch: Batch, body: string, err: unknown, rounds: number): Promise<void> {
    const { fileId, key } = this.start;
    this.deadBatches++;
    await this.deps.deadLetters.add({
      kind: 'batch',
      fileId,
      key,
      batchNo: batch.batchNo,
      firstLine: batch.firstLine,
      lastLine: batch.lastLine,
      reason: errorMessage(err),
      attempts: rounds * (this.deps.maxRetries + 1),
      payload: body,
    });
    this.settle(batch, false);
  }

  private settle(batch: Batch, sent: boolean): void {
    if (sent) this.progress.recordsSent += batch.records.length;
    else this.progress.recordsFailed += batch.records.length;
    const outcome = sent ? 'sent' : 'dead_lettered';
    this.deps.metrics.batches.inc({ outcome });
    this.deps.metrics.records.inc({ outcome }, batch.records.length);
    this.checkpoint.settle(batch.batchNo);
    this.progress.batchesAcked = this.checkpoint.acked;
    // Every acknowledgement moves the checkpoint: a restart resends only what was in flight.
    const entry = checkpoint(this.start, this.progress, this.deps.clock.now());
    this.persisting = this.persisting.then(() => this.deps.ledger.ledgerPut(entry));
  }

  private async deadRecord(line: number, reason: string, raw: string): Promise<void> {
    this.progress.recordsFailed++;
    this.deps.metrics.records.inc({ outcome: 'dead_lettered' });
    const { fileId, key } = this.start;
    await this.deps.deadLetters.add({ kind: 'record', fileId, key, line, reason, attempts: 1, payload: raw });
  }
}
