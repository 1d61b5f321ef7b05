/**
 * Runs tasks for the same key one after another, tasks for different keys concurrently. A task for
 * a free key starts synchronously, so a caller that counts what it queued sees it at once (the full
 * sync's backpressure reads the work queue's length right after submitting).
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const current = previous ? previous.then(task, task) : new Promise<T>((resolve) => resolve(task()));
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return current;
  }

  get size(): number {
    return this.tails.size;
  }
}
