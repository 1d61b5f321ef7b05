import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDatabase } from '../state/sqlite/sqlite.database';
import { SqliteStateStore } from '../state/sqlite/sqlite.state-store';
import { sqliteAt } from '../state/state.ports.testing';
import { BreakerClock, BreakerTransition, SharedCircuitBreaker } from './shared-breaker';

/** A clock whose sleeps advance time instead of waiting. */
class FakeClock implements BreakerClock {
  now = 1_000_000;
  sleeps: number[] = [];
  nowMs(): number {
    return this.now;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.now += ms;
    return Promise.resolve();
  }
}

describe('SharedCircuitBreaker', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteStateStore;
  let clock: FakeClock;
  let transitions: BreakerTransition[];
  const options = { threshold: 3, cooldownMs: 60_000, probeLeaseMs: 10_000, pollMs: 1000, cacheMs: 100 };
  const fail = () => Promise.reject(new Error('503'));
  const ok = () => Promise.resolve('ok');
  const always = () => true;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'breaker-'));
    db = sqliteAt(dir);
    store = new SqliteStateStore(db);
    clock = new FakeClock();
    transitions = [];
  });
  afterEach(() => {
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const breaker = () => new SharedCircuitBreaker('downstream', store, clock, options, (t) => transitions.push(t));

  it('opens after the threshold of consecutive failures; a success in between resets the count', async () => {
    const b = breaker();
    await expect(b.execute(fail, always)).rejects.toThrow();
    await expect(b.execute(fail, always)).rejects.toThrow();
    await b.execute(ok, always);
    expect((await b.state()).failures).toBe(0);
    for (let i = 0; i < 3; i++) await expect(b.execute(fail, always)).rejects.toThrow();
    expect(await b.state()).toMatchObject({ state: 'open', failures: 3, openedAt: clock.now });
    expect(transitions).toEqual([{ name: 'downstream', from: 'closed', to: 'open', failures: 3 }]);
  });

  it('makes callers wait out the cooldown without calling, then one probe closes it', async () => {
    const b = breaker();
    for (let i = 0; i < 3; i++) await expect(b.execute(fail, always)).rejects.toThrow();
    const openedAt = clock.now;
    let calledAt = 0;
    await b.execute(() => {
      calledAt = clock.now;
      return ok();
    }, always);
    expect(calledAt).toBeGreaterThanOrEqual(openedAt + options.cooldownMs);
    expect(clock.sleeps.every((s) => s <= options.pollMs)).toBe(true);
    expect(await b.state()).toMatchObject({ state: 'closed', failures: 0 });
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed']);
  });

  it('reopens when the probe fails', async () => {
    const b = breaker();
    for (let i = 0; i < 3; i++) await expect(b.execute(fail, always)).rejects.toThrow();
    await expect(b.execute(fail, always)).rejects.toThrow();
    expect(await b.state()).toMatchObject({ state: 'open', openedAt: clock.now });
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'open']);
  });

  it('lets exactly one of two replicas probe; the other waits for the outcome', async () => {
    const a = breaker();
    const other = new SharedCircuitBreaker('downstream', store, clock, options);
    for (let i = 0; i < 3; i++) await expect(a.execute(fail, always)).rejects.toThrow();
    clock.now += options.cooldownMs;
    let release!: () => void;
    const probeCalls: string[] = [];
    const probing = a.execute(() => {
      probeCalls.push('a');
      return new Promise<string>((r) => (release = () => r('ok')));
    }, always);
    await new Promise((r) => setImmediate(r));
    expect((await a.state()).state).toBe('half-open');
    // The other replica polls; its sleeps advance the fake clock, so bound them by resolving the probe.
    const waiting = other.execute(() => {
      probeCalls.push('other');
      return ok();
    }, always);
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([probing, waiting]);
    expect(probeCalls).toEqual(['a', 'other']);
    expect((await a.state()).state).toBe('closed');
  });

  it('notices that another replica opened the breaker once its cached view is older than cacheMs', async () => {
    const a = breaker();
    const other = new SharedCircuitBreaker('downstream', store, clock, options);
    await a.execute(ok, always);
    for (let i = 0; i < 3; i++) await expect(other.execute(fail, always)).rejects.toThrow();
    let calls = 0;
    const counted = () => {
      calls++;
      return ok();
    };
    await a.execute(counted, always); // within the cache window: still believed closed
    expect(calls).toBe(1);
    clock.now += options.cacheMs;
    const openedAt = (await other.state()).openedAt;
    clock.sleeps = [];
    await a.execute(counted, always);
    expect(clock.sleeps.length).toBeGreaterThan(0); // waited for the cooldown before probing
    expect(clock.now).toBeGreaterThanOrEqual(openedAt + options.cooldownMs);
  });

  it('does not count errors that are not the endpoint’s fault', async () => {
    const b = breaker();
    for (let i = 0; i < 5; i++)
      await expect(
        b.execute(
          () => Promise.reject(new Error('400')),
          () => false,
        ),
      ).rejects.toThrow();
    expect((await b.state()).state).toBe('closed');
  });
});
