import { ShuttingDownError } from '../common/errors';
import type { AppConfig } from '../config/app-config';
import { PRIORITY, WorkQueue } from './work.queue';

const queueOf = (concurrency: number): WorkQueue => new WorkQueue({ sync: { concurrency } } as AppConfig);

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('never runs more than the concurrency at once, across keys', async () => {
    const work = queueOf(2);
    let running = 0;
    let peak = 0;
    const gates = Array.from({ length: 5 }, deferred);
    const done = gates.map((gate, i) =>
      work.run(`k${i}`, async () => {
        peak = Math.max(peak, ++running);
        await gate.promise;
        running--;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(work.running).toBe(2);
    expect(work.waiting).toBe(3);
    gates.forEach((g) => g.resolve());
    await Promise.all(done);
    expect(peak).toBe(2);
  });

  it('runs changes to one key in submission order, one at a time', async () => {
    const work = queueOf(4);
    const order: string[] = [];
    const first = deferred();
    const a = work.run('k', async () => {
      order.push('a start');
      await first.promise;
      order.push('a end');
    });
    const b = work.run('k', async () => {
      order.push('b');
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['a start']);
    first.resolve();
    await Promise.all([a, b]);
    expect(order).toEqual(['a start', 'a end', 'b']);
  });

  it('a key waiting for its turn does not take a slot from other keys', async () => {
    const work = queueOf(1);
    const gate = deferred();
    const holder = work.run('busy', () => gate.promise);
    const sameKey = work.run('busy', async () => 'second');
    const other = work.run('other', async () => 'other');
    gate.resolve();
    await expect(Promise.all([holder, sameKey, other])).resolves.toEqual([undefined, 'second', 'other']);
  });

  it('gives events a slot before the waiting changes of a full sync', async () => {
    const work = queueOf(1);
    const gate = deferred();
    const order: string[] = [];
    const blocker = work.run('first', () => gate.promise);
    const sync = work.run('listed', async () => void order.push('sync'), PRIORITY.sync);
    const event = work.run('notified', async () => void order.push('event'), PRIORITY.event);
    await new Promise((resolve) => setImmediate(resolve));
    gate.resolve();
    await Promise.all([blocker, sync, event]);
    expect(order).toEqual(['event', 'sync']);
  });

  it('refuses waiting changes once the shutdown began and lets running ones finish', async () => {
    const work = queueOf(1);
    const gate = deferred();
    const running = work.run('a', async () => {
      await gate.promise;
      return 'finished';
    });
    const waiting = work.run('b', async () => 'never');
    await new Promise((resolve) => setImmediate(resolve));
    const stopped = work.beforeApplicationShutdown();
    gate.resolve();
    await expect(running).resolves.toBe('finished');
    await expect(waiting).rejects.toBeInstanceOf(ShuttingDownError);
    await stopped;
  });
});

describe('WorkQueue length', () => {
  it('counts a change for a free key as waiting as soon as it is submitted', () => {
    const work = queueOf(1);
    const gate = deferred();
    void work.run('a', () => gate.promise);
    void work.run('b', async () => undefined);
    void work.run('c', async () => undefined);
    expect(work.running).toBe(1);
    expect(work.waiting).toBe(2);
    gate.resolve();
  });
});
