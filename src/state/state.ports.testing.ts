import { randomUUID } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import { SqliteDatabase } from './sqlite/sqlite.database';
import type { ObjectChange } from '../common/object-change';
import {
  BreakerState,
  BreakerStore,
  BundleRecord,
  BundleStore,
  DeadLetter,
  DeadLetterStore,
  DeliveryLedger,
  emptyCounts,
  EventInbox,
  IdempotencyClaims,
  LeaseStore,
  LedgerEntry,
  NewInboxEntry,
  RunRecord,
  RunStore,
} from './state.ports';

/** Test helpers for the state module (excluded from the build). */
export function sqliteAt(dir: string): SqliteDatabase {
  return new SqliteDatabase(new AppConfig(validateEnv({ S3_BUCKET_NAME: 'test-bucket', STATE_DIR: dir })));
}

/** The ports a backend provides; each one present gets its contract suite. */
export interface StatePorts {
  runs?: RunStore;
  inbox?: EventInbox;
  ledger?: DeliveryLedger;
  claims?: IdempotencyClaims;
  bundles?: BundleStore;
  breakers?: BreakerStore;
  leases?: LeaseStore;
  deadLetters?: DeadLetterStore;
}

export type PortName = keyof StatePorts;

/**
 * The behaviour every backend of a port must have. A backend's spec calls this with the ports it
 * implements and a factory for fresh, empty ones: SQLite implements them all, DynamoDB the shared ones.
 */
export function describeStateContracts(
  name: string,
  implemented: readonly PortName[],
  makePorts: () => Promise<{ ports: StatePorts; close: () => Promise<void> }>,
): void {
  const suite = <K extends PortName>(port: K, title: string, body: (get: () => NonNullable<StatePorts[K]>) => void): void => {
    if (!implemented.includes(port)) return;
    describe(`${title} contract: ${name}`, () => {
      let ports: StatePorts;
      let close: (() => Promise<void>) | undefined;
      beforeEach(async () => {
        ({ ports, close } = await makePorts());
      });
      afterEach(() => close?.());
      const get = (): NonNullable<StatePorts[K]> => {
        const p = ports[port];
        if (!p) throw new Error(`${name} does not provide ${port}`);
        return p as NonNullable<StatePorts[K]>;
      };
      it('answers ping while its backend is reachable', async () => {
        await expect(get().ping()).resolves.toBeUndefined();
      });
      body(get);
    });
  };

  suite('runs', 'RunStore', (store) => {
    const run = (over: Partial<RunRecord> = {}): RunRecord => ({
      id: randomUUID(),
      prefix: 'p/',
      trigger: 'api',
      dryRun: false,
      status: 'running',
      startedAt: new Date('2026-11-23T10:00:00.000Z'),
      counts: emptyCounts(),
      ...over,
    });

    it('stores a run and reads it back exactly', async () => {
      const r = run({ dryRun: true, trigger: 'schedule', message: 'hello' });
      await store().createRun(r);
      await expect(store().getRun(r.id)).resolves.toEqual(r);
      await expect(store().getRun(randomUUID())).resolves.toBeUndefined();
    });

    it('applies partial updates and keeps the rest', async () => {
      const r = run();
      await store().createRun(r);
      const counts = { ...emptyCounts(), listed: 10, downloaded: 7, bytesDownloaded: 1234 };
      await store().updateRun(r.id, { counts });
      await store().updateRun(r.id, { status: 'completed', message: 'done', finishedAt: new Date('2026-11-23T10:00:05.000Z') });
      await expect(store().getRun(r.id)).resolves.toEqual({
        ...r,
        counts,
        status: 'completed',
        message: 'done',
        finishedAt: new Date('2026-11-23T10:00:05.000Z'),
      });
    });

    it('lists runs newest first, limited', async () => {
      const older = run({ startedAt: new Date('2026-11-23T09:00:00Z') });
      const newer = run({ startedAt: new Date('2026-11-23T11:00:00Z') });
      const middle = run({ startedAt: new Date('2026-11-23T10:00:00Z') });
      for (const r of [older, newer, middle]) await store().createRun(r);
      expect((await store().listRuns(10)).map((r) => r.id)).toEqual([newer.id, middle.id, older.id]);
      expect((await store().listRuns(2)).map((r) => r.id)).toEqual([newer.id, middle.id]);
    });

    it('keeps run items in append order and pages through them', async () => {
      const r = run();
      await store().createRun(r);
      await store().appendRunItems(r.id, [
        { operation: 'download', key: 'a', status: 'success', message: 'ok' },
        { operation: 'refuse', key: '../b', status: 'failed', message: 'unsafe' },
      ]);
      await store().appendRunItems(r.id, []);
      await store().appendRunItems(r.id, [{ operation: 'delete', key: 'c', status: 'planned' }]);
      expect(await store().getRunItems(r.id, 0, 10)).toEqual([
        { operation: 'download', key: 'a', status: 'success', message: 'ok' },
        { operation: 'refuse', key: '../b', status: 'failed', message: 'unsafe' },
        { operation: 'delete', key: 'c', status: 'planned', message: undefined },
      ]);
      expect((await store().getRunItems(r.id, 1, 1)).map((i) => i.key)).toEqual(['../b']);
      expect(await store().getRunItems(randomUUID(), 0, 10)).toEqual([]);
    });

    it('counts runs and the ones that went wrong', async () => {
      for (const status of ['completed', 'failed', 'completed_with_errors', 'interrupted', 'aborted'] as const) {
        await store().createRun(run({ status }));
      }
      await expect(store().runTotals()).resolves.toEqual({ runs: 5, failedRuns: 3 });
    });

    it('prunes all but the newest finished runs, with their items, and never a running one', async () => {
      const at = (h: number): Date => new Date(Date.UTC(2026, 10, 23, h));
      const oldest = run({ status: 'completed', startedAt: at(1) });
      const old = run({ status: 'failed', startedAt: at(2) });
      const recent = run({ status: 'completed', startedAt: at(3) });
      const running = run({ status: 'running', startedAt: at(0) });
      for (const r of [oldest, old, recent, running]) await store().createRun(r);
      await store().appendRunItems(oldest.id, [{ operation: 'download', key: 'k', status: 'success' }]);
      await expect(store().pruneRuns(1)).resolves.toBe(2);
      expect((await store().listRuns(10)).map((r) => r.id).sort()).toEqual([recent.id, running.id].sort());
      expect(await store().getRunItems(oldest.id, 0, 10)).toEqual([]);
      await expect(store().pruneRuns(1)).resolves.toBe(0);
    });

    it('marks runs left running by a dead process as interrupted, and only those', async () => {
      const stale = run();
      const done = run({ status: 'completed' });
      await store().createRun(stale);
      await store().createRun(done);
      const at = new Date('2026-11-23T10:00:00Z');
      await expect(store().interruptStaleRuns('process died', at)).resolves.toBe(1);
      await expect(store().getRun(stale.id)).resolves.toMatchObject({ status: 'interrupted', message: 'process died', finishedAt: at });
      await expect(store().getRun(done.id)).resolves.toMatchObject({ status: 'completed' });
      await expect(store().interruptStaleRuns('again', at)).resolves.toBe(0);
    });
  });

  suite('inbox', 'EventInbox', (store) => {
    const inboxEntry = (key: string, over: Partial<ObjectChange> = {}): NewInboxEntry => ({
      id: randomUUID(),
      source: 'webhook',
      change: { bucket: 'b', key, op: 'put', eventName: 'ObjectCreated:Put', etag: 'e', size: 3, sequencer: '00AB', ...over },
      receivedAt: new Date('2026-11-23T10:00:00.000Z'),
    });

    it('keeps inbox entries in arrival order and reads them back exactly', async () => {
      const a = inboxEntry('a/1 é+%.json');
      const b = inboxEntry('b', { op: 'delete', etag: undefined, size: undefined });
      const c = inboxEntry('c');
      await store().inboxAdd([a, b]);
      await store().inboxAdd([c]);
      const listed = await store().inboxList('pending', 10);
      expect(listed).toEqual([a, b, c].map((e) => ({ ...e, attempts: 0, status: 'pending', lastError: undefined })));
      expect((await store().inboxList('pending', 2)).map((e) => e.id)).toEqual([a.id, b.id]);
      expect((await store().inboxList('pending', 10, b.id)).map((e) => e.id)).toEqual([c.id]);
      await expect(store().inboxCounts()).resolves.toEqual({ pending: 3, failed: 0, dead: 0 });
    });

    it('forgets removed inbox entries', async () => {
      const [a, b] = [inboxEntry('a'), inboxEntry('b')];
      await store().inboxAdd([a, b]);
      await store().inboxRemove([a.id, randomUUID()]);
      expect((await store().inboxList('pending', 10)).map((e) => e.id)).toEqual([b.id]);
    });

    it('parks a failed entry until its retry time, gives up on one without, and retries them when asked', async () => {
      const [a, b, c] = [inboxEntry('a'), inboxEntry('b'), inboxEntry('c')];
      await store().inboxAdd([a, b, c]);
      await store().inboxRecordFailure(a.id, 'timeout', new Date(5000));
      await store().inboxRecordFailure(a.id, 'still failing', new Date(9000));
      await store().inboxRecordFailure(c.id, 'file/folder clash', undefined);
      expect((await store().inboxList('pending', 10)).map((e) => e.id)).toEqual([b.id]);
      expect(await store().inboxList('failed', 10)).toEqual([
        expect.objectContaining({ id: a.id, attempts: 2, status: 'failed', lastError: 'still failing', retryAt: new Date(9000) }),
      ]);
      expect(await store().inboxList('dead', 10)).toEqual([
        expect.objectContaining({ id: c.id, attempts: 1, status: 'dead', lastError: 'file/folder clash' }),
      ]);
      await expect(store().inboxCounts()).resolves.toEqual({ pending: 1, failed: 1, dead: 1 });
      // Not due yet, then due.
      await expect(store().inboxRetryFailed({ dueBy: new Date(8999) })).resolves.toBe(0);
      await expect(store().inboxRetryFailed({ dueBy: new Date(9000) })).resolves.toBe(1);
      expect((await store().inboxList('pending', 10)).map((e) => e.id)).toEqual([a.id, b.id]);
      expect((await store().inboxList('pending', 10))[0].retryAt).toBeUndefined();
      // The dead stay dead unless asked for by name.
      await expect(store().inboxRetryFailed()).resolves.toBe(0);
      await expect(store().inboxRetryFailed({ includeDead: true })).resolves.toBe(1);
      await expect(store().inboxCounts()).resolves.toEqual({ pending: 3, failed: 0, dead: 0 });
    });
  });

  suite('ledger', 'DeliveryLedger', (store) => {
    const ledger = (fileId: string, over: Partial<LedgerEntry> = {}): LedgerEntry => ({
      fileId,
      key: fileId.split('@')[0],
      status: 'synced',
      recordsParsed: 0,
      recordsSent: 0,
      recordsFailed: 0,
      batchesAcked: 0,
      attempts: 0,
      createdAt: new Date('2026-11-23T10:00:00.000Z'),
      updatedAt: new Date('2026-11-23T10:00:00.000Z'),
      ...over,
    });

    it('keeps ledger entries per file version, finds them by status and by key', async () => {
      const a1 = ledger('b/a.jsonl@e1', { key: 'b/a.jsonl' });
      const a2 = ledger('b/a.jsonl@e2', { key: 'b/a.jsonl', status: 'delivering', updatedAt: new Date('2026-11-23T11:00:00.000Z') });
      const c = ledger('b/c.jsonl@e1', {
        key: 'b/c.jsonl',
        status: 'delivered',
        deliveredAt: new Date('2026-11-23T10:00:01.000Z'),
        lastError: 'x',
      });
      for (const e of [a1, a2, c]) await store().ledgerPut(e);
      await expect(store().ledgerGet(c.fileId)).resolves.toEqual(c);
      await expect(store().ledgerLatestForKey('b/a.jsonl')).resolves.toEqual(a2);
      expect((await store().ledgerByStatus(['synced', 'delivering'], 10)).map((e) => e.fileId)).toEqual([a1.fileId, a2.fileId]);
      const updated = {
        ...a1,
        status: 'delivered' as const,
        recordsSent: 1000,
        batchesAcked: 2,
        updatedAt: new Date('2026-11-23T12:00:00.000Z'),
      };
      await store().ledgerPut(updated);
      await expect(store().ledgerGet(a1.fileId)).resolves.toEqual(updated);
      await expect(store().ledgerCounts()).resolves.toEqual({ delivering: 1, delivered: 2 });
    });
  });

  suite('claims', 'IdempotencyClaims', (store) => {
    it('grants claims conditionally: free, expired, own, forced; refuses held and completed ones', async () => {
      await expect(store().claim('f', 'r1', 1000, 500, false)).resolves.toBe('claimed');
      await expect(store().claim('f', 'r2', 1200, 500, false)).resolves.toBe('held');
      await expect(store().claim('f', 'r1', 1200, 500, false)).resolves.toBe('claimed');
      await expect(store().claim('f', 'r2', 1800, 500, false)).resolves.toBe('claimed'); // r1's lease ran out at 1700
      await expect(store().completeClaim('f', 'r1', 10_000)).resolves.toBe(false);
      await expect(store().completeClaim('f', 'r2', 10_000)).resolves.toBe(true);
      await expect(store().claim('f', 'r2', 2000, 500, false)).resolves.toBe('completed');
      await expect(store().claim('f', 'r3', 2000, 500, true)).resolves.toBe('claimed');
      await store().releaseClaim('f', 'r3');
      await expect(store().claim('f', 'r4', 2000, 500, false)).resolves.toBe('claimed');
      await expect(store().claim('g', 'r1', 2000, 500, false)).resolves.toBe('claimed');
      await store().completeClaim('g', 'r1', 3000);
      await expect(store().claim('g', 'r2', 3001, 500, false)).resolves.toBe('claimed');
    });
  });

  suite('claims', 'IdempotencyClaims under contention', (store) => {
    it('grants a free claim to exactly one of several owners asking at once', async () => {
      const results = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((owner) => store().claim('contended', owner, 1000, 500, false)));
      expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r === 'held')).toHaveLength(3);
    });
  });

  suite('breakers', 'BreakerStore', (store) => {
    it('writes breaker state only when the version it read is still current', async () => {
      const closed: BreakerState = { name: 'downstream', state: 'closed', failures: 0, openedAt: 0, probeUntil: 0, version: 1 };
      await expect(store().breakerGet('downstream')).resolves.toBeUndefined();
      await expect(store().breakerCompareAndSet(closed, 0)).resolves.toBe(true);
      await expect(store().breakerCompareAndSet({ ...closed, failures: 9 }, 0)).resolves.toBe(false);
      const open = { ...closed, state: 'open' as const, openedAt: 5000, version: 2 };
      await expect(store().breakerCompareAndSet(open, 1)).resolves.toBe(true);
      await expect(store().breakerCompareAndSet({ ...closed, version: 2 }, 1)).resolves.toBe(false);
      await expect(store().breakerGet('downstream')).resolves.toEqual(open);
    });
  });

  suite('bundles', 'BundleStore', (store) => {
    it('bundles each file version once: members are sealed into a bundle conditionally', async () => {
      const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 10, 0, s));
      await expect(store().bundleAddMember({ fileId: 'b/a@1', key: 'a', size: 10, addedAt: at(1) })).resolves.toBe(true);
      await expect(store().bundleAddMember({ fileId: 'b/a@1', key: 'a', size: 10, addedAt: at(5) })).resolves.toBe(false);
      await store().bundleAddMember({ fileId: 'b/c@1', key: 'c', size: 30, addedAt: at(2) });
      expect((await store().bundlePendingMembers(10)).map((m) => m.fileId)).toEqual(['b/a@1', 'b/c@1']);
      await expect(store().bundleCounts()).resolves.toEqual({ waitingFiles: 2, bundles: {} });
      const bundle: BundleRecord = {
        id: 'bundle-1',
        status: 'sealed',
        files: 2,
        bytes: 40,
        attempts: 0,
        createdAt: at(3),
        updatedAt: at(3),
      };
      await expect(store().bundleSeal(bundle, ['b/a@1', 'b/c@1'])).resolves.toBe(2);
      await expect(store().bundleSeal({ ...bundle, id: 'bundle-2' }, ['b/a@1'])).resolves.toBe(0);
      expect((await store().bundlesByStatus(['sealed', 'archived', 'posted', 'failed'], 10)).map((b) => b.id)).toEqual(['bundle-1']);
      expect(await store().bundlePendingMembers(10)).toEqual([]);
      expect((await store().bundleMembers('bundle-1')).map((m) => [m.key, m.bundleId])).toEqual([
        ['a', 'bundle-1'],
        ['c', 'bundle-1'],
      ]);
      const archived = { ...bundle, status: 'archived' as const, archiveKey: 'bundles/x.tar.gz', archiveBytes: 99, updatedAt: at(4) };
      await store().bundlePut(archived);
      expect(await store().bundlesByStatus(['archived'], 10)).toEqual([archived]);
      expect((await store().bundlesByStatus(['archived', 'failed'], 10)).map((b) => b.id)).toEqual(['bundle-1']);
      await store().bundleAddMember({ fileId: 'b/d@1', key: 'd', size: 5, addedAt: at(6) });
      await store().bundleSeal({ ...bundle, id: 'bundle-3', files: 1, bytes: 5 }, ['b/d@1']);
      await store().bundleAddMember({ fileId: 'b/e@1', key: 'e', size: 5, addedAt: at(7) });
      await expect(store().bundleCounts()).resolves.toEqual({ waitingFiles: 1, bundles: { archived: 1, sealed: 1 } });
    });
  });

  suite('leases', 'LeaseStore', (store) => {
    it('grants a lease to one owner at a time and hands it over once it expired', async () => {
      await expect(store().acquireLease('scheduled-sync', 'r1', 1000, 500)).resolves.toBe(true);
      await expect(store().acquireLease('scheduled-sync', 'r2', 1200, 500)).resolves.toBe(false);
      await expect(store().acquireLease('scheduled-sync', 'r1', 1400, 500)).resolves.toBe(true); // renewed to 1900
      await expect(store().acquireLease('scheduled-sync', 'r2', 1800, 500)).resolves.toBe(false);
      await expect(store().acquireLease('scheduled-sync', 'r2', 1900, 500)).resolves.toBe(true);
      await expect(store().acquireLease('other', 'r1', 1900, 500)).resolves.toBe(true);
    });

    it('grants a free lease to exactly one of several owners asking at once', async () => {
      const results = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((owner) => store().acquireLease('contended', owner, 1000, 500)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('releases only its own lease', async () => {
      await store().acquireLease('l', 'r1', 1000, 10_000);
      await store().releaseLease('l', 'r2');
      await expect(store().acquireLease('l', 'r2', 1001, 500)).resolves.toBe(false);
      await store().releaseLease('l', 'r1');
      await expect(store().acquireLease('l', 'r2', 1002, 500)).resolves.toBe(true);
    });
  });

  suite('deadLetters', 'DeadLetterStore', (store) => {
    const letter = (n: number, over: Partial<DeadLetter> = {}): DeadLetter => ({
      id: `dl-${n}`,
      at: new Date(Date.UTC(2026, 10, 23, 10, 0, n)).toISOString(),
      kind: 'batch',
      fileId: 'b/f.jsonl@e',
      key: 'f.jsonl',
      batchNo: n,
      firstLine: n * 10 + 1,
      lastLine: n * 10 + 10,
      reason: 'endpoint answered 422',
      attempts: 4,
      payload: `{"records":[${n}]}`,
      ...over,
    });

    it('keeps dead letters in order, exactly, and pages through them', async () => {
      const record = letter(2, {
        kind: 'record',
        batchNo: undefined,
        firstLine: undefined,
        lastLine: undefined,
        line: 17,
        payload: 'not json',
      });
      for (const l of [letter(1), record, letter(3, { payload: '', payloadRef: '/state/dead-letter-payloads/dl-3.json' })]) {
        await store().deadLetterAdd(l);
      }
      const all = await store().deadLetterList(0, 10);
      expect(all.total).toBe(3);
      expect(all.letters).toEqual([letter(1), record, letter(3, { payload: '', payloadRef: '/state/dead-letter-payloads/dl-3.json' })]);
      expect((await store().deadLetterList(1, 1)).letters.map((l) => l.id)).toEqual(['dl-2']);
      expect(await store().deadLetterList(5, 10)).toEqual({ total: 3, letters: [] });
    });

    it('lists the batches not yet redriven, and marks redriven ones', async () => {
      await store().deadLetterAdd(letter(1));
      await store().deadLetterAdd(letter(2, { kind: 'record', line: 3 }));
      await store().deadLetterAdd(letter(3));
      expect((await store().deadLetterPendingBatches(10)).map((l) => l.id)).toEqual(['dl-1', 'dl-3']);
      await store().deadLetterMarkRedriven(['dl-1'], new Date('2026-11-23T11:00:00.000Z'));
      expect((await store().deadLetterPendingBatches(10)).map((l) => l.id)).toEqual(['dl-3']);
      expect((await store().deadLetterList(0, 1)).letters[0].redrivenAt).toBe('2026-11-23T11:00:00.000Z');
    });
  });
}
