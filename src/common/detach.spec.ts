import { detach, detachedFailures } from './detach';

describe('detach', () => {
  it('logs and counts a failure instead of leaving the rejection unhandled', async () => {
    const logged: Array<[Record<string, unknown>, string]> = [];
    const before = detachedFailures();
    const failing = Promise.reject(new Error('boom'));
    detach(failing, { error: (obj: Record<string, unknown>, msg: string) => logged.push([obj, msg]) } as never, 'renewal failed', {
      fileId: 'b/k@e',
    });
    await failing.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(logged).toEqual([[{ fileId: 'b/k@e', err: 'boom' }, 'renewal failed']]);
    expect(detachedFailures()).toBe(before + 1);
  });

  it('leaves a successful call alone', async () => {
    const logged: unknown[] = [];
    const before = detachedFailures();
    const ok = Promise.resolve(1);
    detach(ok, { error: (...args: unknown[]) => logged.push(args) } as never, 'never');
    await ok;
    await new Promise((resolve) => setImmediate(resolve));
    expect(logged).toEqual([]);
    expect(detachedFailures()).toBe(before);
  });
});
