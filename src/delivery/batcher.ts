/**
 * Groups serialised records into batches of at most `maxRecords` records and `maxBytes` bytes of
 * body (Vector's batch settings: count and size), numbered from 0 in file order: batch numbers are
 * stable across replays, which is what the Idempotency-Key and the checkpoint rely on.
 */
export interface Batch {
  batchNo: number;
  records: string[];
  /** Size of the records joined with commas. */
  bytes: number;
  firstLine: number;
  lastLine: number;
}

/** Room the envelope `{"records":[...],"timestamp":"...","batchSize":n}` takes beside the records. */
export const ENVELOPE_BYTES = 96;

export class Batcher {
  private current: Batch;
  private nextNo = 0;

  constructor(
    private readonly maxRecords: number,
    private readonly maxBytes: number,
  ) {
    this.current = this.empty();
  }

  /** The number the batch being filled will have. */
  get pendingBatchNo(): number {
    return this.current.batchNo;
  }

  /** Whether a record of this size can ever fit in a batch. */
  fits(recordBytes: number): boolean {
    return recordBytes + ENVELOPE_BYTES <= this.maxBytes;
  }

  /** Adds a record; returns the batch it completed, if any (the record then starts the next one). */
  add(json: string, line: number): Batch | undefined {
    const size = Buffer.byteLength(json);
    const b = this.current;
    const full = b.records.length >= this.maxRecords || (b.records.length > 0 && b.bytes + 1 + size + ENVELOPE_BYTES > this.maxBytes);
    const done = full ? this.take() : undefined;
    const c = this.current;
    if (c.records.length === 0) c.firstLine = line;
    c.bytes += (c.records.length > 0 ? 1 : 0) + size;
    c.records.push(json);
    c.lastLine = line;
    return done;
  }

  /** The last, partial batch (at the end of the file). */
  flush(): Batch | undefined {
    return this.current.records.length > 0 ? this.take() : undefined;
  }

  private take(): Batch {
    const b = this.current;
    this.current = this.empty();
    return b;
  }

  private empty(): Batch {
    return { batchNo: this.nextNo++, records: [], bytes: 0, firstLine: 0, lastLine: 0 };
  }
}

/** The request body sent downstream. */
export function batchBody(batch: Batch, timestamp: string): string {
  return `{"records":[${batch.records.join(',')}],"timestamp":${JSON.stringify(timestamp)},"batchSize":${batch.records.length}}`;
}
