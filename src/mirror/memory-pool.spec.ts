import { MemoryPool } from './memory-pool';

describe('MemoryPool', () => {
  let serial = 0;
  const make = (): { id: number } => ({ id: ++serial });

  it('gives back the same pieces instead of making new ones', () => {
    const pool = new MemoryPool(make, 2);
    const a = pool.take();
    pool.give(a);
    expect(pool.take()).toBe(a);
  });

  it('keeps at most `keep` free pieces', () => {
    const pool = new MemoryPool(make, 1);
    const a = pool.take();
    const b = pool.take();
    pool.give(a);
    pool.give(b);
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(b);
  });

  it('makes no more than `limit` pieces: acquire waits for one to be given back', async () => {
    const pool = new MemoryPool(make, 2, 2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    let third: { id: number } | undefined;
    const waiting = Promise.resolve(pool.acquire()).then((p) => (third = p));
    await Promise.resolve();
    await Promise.resolve();
    expect(third).toBeUndefined();
    pool.give(b);
    await waiting;
    expect(third).toBe(b);
    expect(a).not.toBe(b);
  });

  it('serves waiters in order, and a piece dropped over `keep` frees room under the limit', async () => {
    const pool = new MemoryPool(make, 0, 1);
    const only = await pool.acquire();
    const order: number[] = [];
    const first = Promise.resolve(pool.acquire()).then((p) => order.push(1) && p);
    const second = Promise.resolve(pool.acquire()).then((p) => order.push(2) && p);
    pool.give(only);
    expect(await first).toBe(only);
    pool.give(only);
    expect(await second).toBe(only);
    expect(order).toEqual([1, 2]);
    // Nobody waits and nothing is kept: the piece is dropped, so a new one may be made at once.
    pool.give(only);
    const fresh = pool.acquire();
    expect(fresh).not.toBeInstanceOf(Promise);
    expect(fresh).not.toBe(only);
  });
});
