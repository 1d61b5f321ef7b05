import PQueue from 'p-queue';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryLedger, LedgerEntry } from '../state/state.ports';
import type { DeadLetters, NewDeadLetter } from './dead-letters.service';
import { Metrics } from '../metrics/metrics.service';
import { FileDelivery } from './file-delivery';
import { PermanentDeliveryError, TransientDeliveryError } from './http-delivery';
import type { RecordsSink } from './records.sink';
import { SteppingClock } from '../../test/support/clocks';

describe('FileDelivery (one file, fakes of the sink, the ledger and the dead letters)', () => {
  let dir: string;
  let path: string;
  const start: LedgerEntry = {
    fileId: 'b/f.jsonl@e',
    key: 'f.jsonl',
    status: 'delivering',
    recordsParsed: 0,
    recordsSent: 0,
    recordsFailed: 0,
    batchesAcked: 0,
    attempts: 1,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-delivery-'));
    path = join(dir, 'f.jsonl');
    writeFileSync(path, '{"n":1}\n{"n":2}\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function run(send: (attempt: number) => Promise<void>, clock = new SteppingClock()) {
    const letters: NewDeadLetter[] = [];
    let attempt = 0;
    const delivery = new FileDelivery(
      start,
      {
        ledger: { ledgerPut: async () => undefined } as unknown as DeliveryLedger,
        sink: { send: () => send(++attempt) } as unknown as RecordsSink,
        deadLetters: { add: async (l: NewDeadLetter) => void letters.push(l) } as unknown as DeadLetters,
        clock,
        metrics: new Metrics(),
        requests: new PQueue({ concurrency: 1 }),
        maxRecordsPerBatch: 10,
        maxBatchBytes: 1 << 20,
        maxRetries: 2,
        deadLetterAfterMs: 60 * 60_000,
        retryMaxMs: 30_000,
      },
      new AbortController().signal,
    );
    return { result: delivery.run(path), letters, attempts: () => attempt };
  }

  it('keeps a batch the downstream cannot take for now, and sends it once it can: no dead letter', async () => {
    const { result, letters, attempts } = run(async (n) => {
      if (n <= 5) throw new TransientDeliveryError('endpoint answered 503', 503);
    });
    await expect(result).resolves.toMatchObject({ recordsSent: 2, recordsFailed: 0, deadBatches: 0, batchesAcked: 1 });
    expect(attempts()).toBe(6);
    expect(letters).toEqual([]);
  });

  it('dead-letters a batch that is still refused as unavailable after DEAD_LETTER_AFTER_MINUTES', async () => {
    const { result, letters, attempts } = run(() => Promise.reject(new TransientDeliveryError('endpoint answered 503', 503)));
    await expect(result).resolves.toMatchObject({ recordsSent: 0, recordsFailed: 2, deadBatches: 1 });
    // One round every RETRY_MAX_MS (30 s) for an hour.
    expect(attempts()).toBe(121);
    expect(letters).toEqual([expect.objectContaining({ kind: 'batch', batchNo: 0, reason: 'endpoint answered 503', attempts: 121 * 3 })]);
  });

  it('dead-letters a batch the downstream refuses (4xx) at once', async () => {
    const { result, letters, attempts } = run(() => Promise.reject(new PermanentDeliveryError('endpoint answered 422', 422)));
    await expect(result).resolves.toMatchObject({ deadBatches: 1, recordsFailed: 2 });
    expect(attempts()).toBe(1);
    expect(letters).toHaveLength(1);
  });
});
