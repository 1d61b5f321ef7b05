import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Metrics } from '../metrics/metrics.service';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../config/app-config';
import type { MirrorService } from '../mirror/mirror.service';
import type { LocalValues, ReplicaIdentity } from '../state/local-values.service';
import type { ReadThrough } from '../sync/read-through.service';
import type { ClaimResult, DeliveryLedger, IdempotencyClaims, LedgerEntry } from '../state/state.ports';
import type { DeadLetters } from './dead-letters.service';
import { ClaimLostError, DeliveryService } from './delivery.service';
import type { RecordsSink } from './records.sink';
import { FixedClock } from '../../test/support/clocks';

/** Service-level spec: DeliveryService against fakes of the ports it uses (store, mirror, sink, dead letters). */

class FakeStore {
  readonly ledger = new Map<string, LedgerEntry>();
  claims: ClaimResult[] = [];
  released: string[] = [];
  completed: string[] = [];
  ledgerGet = async (id: string): Promise<LedgerEntry | undefined> => this.ledger.get(id);
  ledgerPut = async (e: LedgerEntry): Promise<void> => void this.ledger.set(e.fileId, { ...e });
  ledgerByStatus = async (): Promise<LedgerEntry[]> => [];
  claim = async (): Promise<ClaimResult> => this.claims.shift() ?? 'claimed';
  completeClaim = async (id: string): Promise<boolean> => (this.completed.push(id), true);
  releaseClaim = async (id: string): Promise<void> => void this.released.push(id);
}

class FakeSink {
  readonly sent: string[] = [];
  /** Why held sends were stopped. */
  readonly stoppedBy: unknown[] = [];
  /** When set, a send waits until the delivery is stopped. */
  hold = false;
  send = (body: string, key: string, signal?: AbortSignal): Promise<void> => {
    this.sent.push(key);
    if (!this.hold) return Promise.resolve();
    return new Promise((_, reject) =>
      signal!.addEventListener(
        'abort',
        () => {
          this.stoppedBy.push(signal!.reason);
          reject(signal!.reason as Error);
        },
        { once: true },
      ),
    );
  };
}

describe('DeliveryService (fakes of its ports)', () => {
  let dir: string;
  let store: FakeStore;
  let sink: FakeSink;
  let service: DeliveryService;
  const bucket = 'b';
  const key = 'calls.jsonl';
  const etag = 'e1';
  const fileId = `${bucket}/${key}@${etag}`;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'delivery-spec-'));
    writeFileSync(join(dir, key), Array.from({ length: 5 }, (_, n) => JSON.stringify({ n })).join('\n') + '\n');
    store = new FakeStore();
    sink = new FakeSink();
    const config = {
      s3: { bucket },
      state: { dir },
      delivery: {
        url: 'http://downstream.invalid/calls',
        patterns: ['**'],
        concurrency: 2,
        maxRecordsPerBatch: 2,
        maxBatchBytes: 1 << 20,
        maxRetries: 0,
        idempotencyTtlMs: 1000,
      },
    } as unknown as AppConfig;
    const mirror = {
      committedVersion: () => ({ fileId, etag, size: 1 }),
      openForRead: async () => ({ absPath: join(dir, key) }),
      *committedSince() {},
    } as unknown as MirrorService;
    const deadLetters = { add: async () => undefined } as unknown as DeadLetters;
    service = new DeliveryService(
      config,
      mirror,
      store as unknown as DeliveryLedger,
      store as unknown as IdempotencyClaims,
      sink as unknown as RecordsSink,
      deadLetters,
      new FixedClock(),
      { id: 'replica-1' } as ReplicaIdentity,
      { getOrCreate: (_name: string, initial: () => string) => initial() } as unknown as LocalValues,
      { enabled: false, open: (k: string, e: { fileId: string }) => mirror.openForRead(k, e) } as unknown as ReadThrough,
      new Metrics(),
    );
  });

  afterEach(async () => {
    jest.useRealTimers();
    await service.beforeApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Turns the event loop (file reads included) until `done` holds; a bounded number of turns, no clock. */
  const until = async (done: () => boolean): Promise<void> => {
    for (let turns = 0; turns < 100_000 && !done(); turns++) await new Promise((resolve) => setImmediate(resolve));
  };

  const settled = async (): Promise<LedgerEntry | undefined> => {
    await until(() => !['synced', 'delivering', undefined].includes(store.ledger.get(fileId)?.status));
    return store.ledger.get(fileId);
  };

  it('delivers a committed version in batches under fileId#batchNo and completes its claim', async () => {
    service.fileCommitted({ fileId, key, etag, bytes: 1, verifiedBy: 'md5' });
    expect(await settled()).toMatchObject({ status: 'delivered', recordsSent: 5, batchesAcked: 3, attempts: 1 });
    expect(sink.sent.sort()).toEqual([`${fileId}#0`, `${fileId}#1`, `${fileId}#2`]);
    expect(store.completed).toEqual([fileId]);
  });

  it('marks the version delivered without sending when the claim says it was delivered already', async () => {
    store.claims = ['completed'];
    service.fileCommitted({ fileId, key, etag, bytes: 1, verifiedBy: 'md5' });
    expect(await settled()).toMatchObject({ status: 'delivered', recordsSent: 0 });
    expect(sink.sent).toEqual([]);
  });

  it('stops delivering a file whose claim another replica took over on renewal, leaving it to that replica', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    sink.hold = true;
    store.claims = ['claimed', 'held'];
    service.fileCommitted({ fileId, key, etag, bytes: 1, verifiedBy: 'md5' });
    await until(() => sink.sent.length > 0);
    expect(sink.sent.length).toBeGreaterThan(0);
    const sentBeforeRenewal = sink.sent.length;
    // The lease is renewed every third of its length (60 s); the store answers "held".
    await jest.advanceTimersByTimeAsync(20_000);
    await until(() => sink.stoppedBy.length >= sentBeforeRenewal);
    expect(sink.stoppedBy).toHaveLength(sentBeforeRenewal);
    expect(sink.stoppedBy.every((reason) => reason instanceof ClaimLostError)).toBe(true);
    expect(store.ledger.get(fileId)).toMatchObject({ status: 'delivering', batchesAcked: 0 });
    expect(store.released).toEqual([]);
    expect(store.completed).toEqual([]);
    expect(sink.sent).toHaveLength(sentBeforeRenewal);
  });
});
