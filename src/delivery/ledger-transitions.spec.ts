import type { LedgerEntry, LedgerStatus } from '../state/state.ports';
import {
  alreadyDelivered,
  awaitsCommit,
  Checkpoint,
  checkpoint,
  committed,
  deliveryFailed,
  deliveryFinished,
  deliveryStarted,
  downloadStarting,
  isUnfinished,
  notCommitted,
  redriven,
} from './ledger-transitions';

const T0 = new Date('2026-11-23T10:00:00Z');
const T1 = new Date('2026-11-23T10:05:00Z');
const ID = 'bucket/k.jsonl@e1';

function entry(status: LedgerStatus, patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    fileId: ID,
    key: 'k.jsonl',
    status,
    recordsParsed: 10,
    recordsSent: 8,
    recordsFailed: 2,
    batchesAcked: 3,
    attempts: 2,
    createdAt: T0,
    updatedAt: T0,
    ...patch,
  };
}

const ALL: LedgerStatus[] = ['pending', 'synced', 'delivering', 'delivered', 'failed', 'dead'];

describe('ledger transitions', () => {
  it.each(ALL.map((s) => [s, s === 'pending' || s === 'failed'] as const))(
    'a commit of a %s version starts afresh: %s',
    (status, expected) => {
      expect(awaitsCommit(entry(status))).toBe(expected);
    },
  );

  it('a commit of an unknown version starts afresh', () => expect(awaitsCommit(undefined)).toBe(true));

  it('only synced and delivering entries are resumed at start', () => {
    expect(ALL.filter((s) => isUnfinished(entry(s)))).toEqual(['synced', 'delivering']);
  });

  describe('download starting', () => {
    it('records an unknown version as pending with nothing delivered', () => {
      expect(downloadStarting(undefined, ID, 'k.jsonl', T1)).toEqual({
        fileId: ID,
        key: 'k.jsonl',
        status: 'pending',
        recordsParsed: 0,
        recordsSent: 0,
        recordsFailed: 0,
        batchesAcked: 0,
        attempts: 0,
        createdAt: T1,
        updatedAt: T1,
        lastError: undefined,
      });
    });

    it('keeps the attempts and creation time of a failed version and clears its error', () => {
      const next = downloadStarting(entry('failed', { lastError: 'x' }), ID, 'k.jsonl', T1);
      expect(next).toMatchObject({ status: 'pending', attempts: 2, createdAt: T0, batchesAcked: 0, lastError: undefined });
    });

    it.each(['synced', 'delivering', 'delivered', 'dead'] as const)('leaves a %s version alone', (status) => {
      expect(downloadStarting(entry(status), ID, 'k.jsonl', T1)).toBeUndefined();
    });
  });

  describe('not committed', () => {
    it('marks a pending version failed with the reason', () => {
      expect(notCommitted(entry('pending'), 'S3 answered 500', T1)).toMatchObject({
        status: 'failed',
        lastError: 'not mirrored: S3 answered 500',
        updatedAt: T1,
      });
    });

    it.each([undefined, ...ALL.filter((s) => s !== 'pending').map((s) => entry(s))])(
      'leaves anything but pending alone (%#)',
      (existing) => {
        expect(notCommitted(existing, 'why', T1)).toBeUndefined();
      },
    );
  });

  describe('committed', () => {
    it.each([undefined, entry('pending'), entry('failed')])('delivers from the first batch (%#)', (existing) => {
      const decision = committed(existing, ID, 'k.jsonl', T1, false);
      expect(decision.action).toBe('deliver');
      expect(decision.entry).toMatchObject({ status: 'synced', batchesAcked: 0, recordsSent: 0, updatedAt: T1 });
    });

    it.each(['synced', 'delivering', 'delivered', 'dead'] as const)('keeps a %s version as it is', (status) => {
      const existing = entry(status);
      expect(committed(existing, ID, 'k.jsonl', T1, false)).toEqual({ action: 'keep', entry: existing });
    });

    it('a reprocess starts a delivered version again from the first batch, keeping its attempts', () => {
      const decision = committed(entry('delivered'), ID, 'k.jsonl', T1, true);
      expect(decision).toMatchObject({ action: 'deliver', entry: { status: 'synced', batchesAcked: 0, attempts: 2, createdAt: T0 } });
    });
  });

  it('counts an attempt when delivery starts and clears the last error', () => {
    expect(deliveryStarted(entry('synced', { lastError: 'old' }), T1)).toMatchObject({
      status: 'delivering',
      attempts: 3,
      lastError: undefined,
      updatedAt: T1,
    });
  });

  it('writes progress without changing the status', () => {
    const progress = { recordsParsed: 20, recordsSent: 15, recordsFailed: 1, batchesAcked: 5 };
    expect(checkpoint(entry('delivering'), progress, T1)).toMatchObject({ ...progress, status: 'delivering', updatedAt: T1 });
  });

  it('finishes delivered, or dead when a batch was dead-lettered', () => {
    const progress = { recordsParsed: 20, recordsSent: 20, recordsFailed: 0, batchesAcked: 4 };
    expect(deliveryFinished(entry('delivering'), progress, 0, T1)).toMatchObject({ status: 'delivered', deliveredAt: T1, batchesAcked: 4 });
    expect(deliveryFinished(entry('delivering'), progress, 1, T1)).toMatchObject({ status: 'dead', deliveredAt: T1 });
  });

  it('counts redriven batches as sent, and a dead file whose dead batches all went as delivered', () => {
    const dead = entry('dead', { recordsSent: 200, recordsFailed: 103 });
    expect(redriven(dead, 100, 0, T1)).toMatchObject({ status: 'delivered', recordsSent: 300, recordsFailed: 3, updatedAt: T1 });
    expect(redriven(dead, 100, 1, T1)).toMatchObject({ status: 'dead', recordsSent: 300, recordsFailed: 3 });
    expect(redriven(entry('delivering'), 5, 0, T1)).toMatchObject({ status: 'delivering' });
  });

  it('records a failure with its error, and a delivery made elsewhere as delivered', () => {
    expect(deliveryFailed(entry('delivering'), 'boom', T1)).toMatchObject({ status: 'failed', lastError: 'boom', batchesAcked: 3 });
    expect(alreadyDelivered(entry('synced'), T1)).toMatchObject({ status: 'delivered', updatedAt: T1 });
  });
});

describe('Checkpoint', () => {
  it('moves only over an unbroken run of settled batches', () => {
    const cp = new Checkpoint(0);
    cp.settle(1);
    cp.settle(2);
    expect(cp.acked).toBe(0);
    cp.settle(0);
    expect(cp.acked).toBe(3);
    cp.settle(4);
    expect(cp.acked).toBe(3);
    cp.settle(3);
    expect(cp.acked).toBe(5);
  });

  it('resumes after the batches acknowledged before a restart', () => {
    const cp = new Checkpoint(3);
    expect([0, 1, 2, 3].map((n) => cp.handledBefore(n))).toEqual([true, true, true, false]);
    expect(cp.acked).toBe(3);
    cp.settle(3);
    expect(cp.acked).toBe(4);
  });
});
