import type { SchedulerRegistry } from '@nestjs/schedule';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../config/app-config';
import type { ReplicaIdentity } from '../state/local-values.service';
import { SqliteStateStore } from '../state/sqlite/sqlite.state-store';
import { sqliteAt } from '../state/state.ports.testing';
import { SyncScheduler } from './sync.scheduler';
import type { SyncService } from './sync.service';
import { SettableClock } from '../../test/support/clocks';

const config = (sync: Partial<AppConfig['sync']>): AppConfig =>
  ({ sync: { periodic: true, onStart: false, intervalHours: 1, ...sync } }) as unknown as AppConfig;
const registry = { addCronJob: () => undefined } as unknown as SchedulerRegistry;

function fakeSync(): SyncService & { started: number } {
  const sync = {
    started: 0,
    start: async () => {
      sync.started++;
      return { done: Promise.resolve() };
    },
  };
  return sync as unknown as SyncService & { started: number };
}

describe('SyncScheduler', () => {
  let dir: string;
  let db: ReturnType<typeof sqliteAt>;
  let leases: SqliteStateStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'scheduler-'));
    db = sqliteAt(dir);
    leases = new SqliteStateStore(db);
  });
  afterEach(() => {
    jest.useRealTimers();
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the schedule on the replica that holds the lease, and another takes it over once it lapses', async () => {
    const clock = new SettableClock();
    const [syncA, syncB] = [fakeSync(), fakeSync()];
    const a = new SyncScheduler(config({}), registry, syncA, leases, { id: 'replica-a' } as ReplicaIdentity, clock);
    const b = new SyncScheduler(config({}), registry, syncB, leases, { id: 'replica-b' } as ReplicaIdentity, clock);
    await a.tick('schedule');
    await b.tick('schedule');
    expect([syncA.started, syncB.started]).toEqual([1, 0]);
    clock.ms += 4_000; // inside the holder's lease (at least 5 s)
    await b.tick('schedule');
    await a.tick('schedule'); // the holder renews
    expect([syncA.started, syncB.started]).toEqual([2, 0]);
    clock.ms += 60_000; // the holder is gone: nobody renewed
    await b.tick('schedule');
    expect([syncA.started, syncB.started]).toEqual([2, 1]);
  });

  it('waits intervals longer than a timer can hold (SYNC_INTERVAL_HOURS above 596.5) instead of firing at once', async () => {
    jest.useFakeTimers();
    const sync = fakeSync();
    const scheduler = new SyncScheduler(
      config({ intervalHours: 1000 }),
      registry,
      sync,
      leases,
      { id: 'r' } as ReplicaIdentity,
      new SettableClock(),
    );
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(2 ** 31);
    expect(sync.started).toBe(0);
    await jest.advanceTimersByTimeAsync(1000 * 3_600_000 - 2 ** 31);
    expect(sync.started).toBe(1);
    await jest.advanceTimersByTimeAsync(1000 * 3_600_000);
    expect(sync.started).toBe(2);
    scheduler.beforeApplicationShutdown();
  });
});
