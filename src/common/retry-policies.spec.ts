import { ConstantBackoff } from 'cockatiel';
import { isSpent, markSpent, RetryLayer } from './retry-policies';

const transient = (): Error => Object.assign(new Error('reset'), { code: 'ECONNRESET' });
const isTransient = (err: Error): boolean => (err as Error & { code?: string }).code === 'ECONNRESET';

describe('RetryLayer', () => {
  it('retries what it handles up to its attempts, then marks the error spent', async () => {
    let calls = 0;
    const layer = new RetryLayer(isTransient, 2, new ConstantBackoff(0));
    const failed = await layer.execute(() => (calls++, Promise.reject(transient()))).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(isSpent(failed)).toBe(true);
  });

  it('never retries an error an inner layer spent: nested layers cost the inner attempts only', async () => {
    let calls = 0;
    const inner = new RetryLayer(isTransient, 2, new ConstantBackoff(0));
    const outer = new RetryLayer(isTransient, 2, new ConstantBackoff(0));
    await expect(outer.execute(() => inner.execute(() => (calls++, Promise.reject(transient()))))).rejects.toThrow('reset');
    expect(calls).toBe(3);
  });

  it('leaves what it does not handle to the outer layer, unmarked', async () => {
    let calls = 0;
    const integrity = new Error('bytes failed their check');
    const inner = new RetryLayer(isTransient, 2, new ConstantBackoff(0));
    const outer = new RetryLayer((e) => e === integrity, 2, new ConstantBackoff(0));
    await expect(outer.execute(() => inner.execute(() => (calls++, Promise.reject(integrity))))).rejects.toBe(integrity);
    expect(calls).toBe(3);
  });

  it('does not retry an error the caller marked spent (the SDK retried it already)', async () => {
    let calls = 0;
    const layer = new RetryLayer(isTransient, 3, new ConstantBackoff(0));
    await expect(layer.execute(() => (calls++, Promise.reject(markSpent(transient()))))).rejects.toThrow('reset');
    expect(calls).toBe(1);
  });
});
