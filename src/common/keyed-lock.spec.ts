import { KeyedLock } from './keyed-lock';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('KeyedLock', () => {
  it('runs tasks for one key one at a time, in order', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const gate = deferred();
    const first = lock.run('k', async () => {
      events.push('first:start');
      await gate.promise;
      events.push('first:end');
    });
    const second = lock.run('k', async () => {
      events.push('second');
    });
    await Promise.resolve();
    expect(events).toEqual(['first:start']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(events).toEqual(['first:start', 'first:end', 'second']);
  });

  it('runs tasks for different keys concurrently', async () => {
    const lock = new KeyedLock();
    const gate = deferred();
    let otherRan = false;
    const blocked = lock.run('a', () => gate.promise);
    await lock.run('b', async () => {
      otherRan = true;
    });
    expect(otherRan).toBe(true);
    gate.resolve();
    await blocked;
  });

  it('keeps going after a failed task and forgets idle keys', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.run('k', () => Promise.resolve(42))).resolves.toBe(42);
    await new Promise((r) => setImmediate(r));
    expect(lock.size).toBe(0);
  });
});

describe('KeyedLock start', () => {
  it('starts a task for a free key synchronously and a queued one only after its predecessor', async () => {
    const lock = new KeyedLock();
    const started: string[] = [];
    const gate = deferred();
    const first = lock.run('k', () => {
      started.push('first');
      return gate.promise;
    });
    const second = lock.run('k', async () => void started.push('second'));
    expect(started).toEqual(['first']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(started).toEqual(['first', 'second']);
  });

  it('turns a task that throws synchronously into a rejection', async () => {
    const lock = new KeyedLock();
    await expect(
      lock.run('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });
});
