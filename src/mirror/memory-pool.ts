/**
 * Memory used again by the next downloads, up to `keep` free pieces of it. With a `limit`, no more
 * than that many pieces exist at once: `acquire` waits for one to come back instead of making
 * another. `take` never waits, for pools whose users cannot (it ignores the limit).
 */
export class MemoryPool<T> {
  private readonly free: T[] = [];
  /** Pieces in existence: in use or free. */
  private made = 0;
  private readonly waiting: Array<(piece: T) => void> = [];

  constructor(
    private readonly make: () => T,
    private readonly keep: number,
    private readonly limit = Infinity,
  ) {}

  take(): T {
    const piece = this.free.pop();
    if (piece !== undefined) return piece;
    this.made++;
    return this.make();
  }

  /** A piece, at once when one is free or may be made, else once one is given back. */
  acquire(): T | Promise<T> {
    if (this.free.length > 0 || this.made < this.limit) return this.take();
    return new Promise<T>((resolve) => this.waiting.push(resolve));
  }

  give(piece: T): void {
    const next = this.waiting.shift();
    if (next) next(piece);
    else if (this.free.length < this.keep) this.free.push(piece);
    else this.made--;
  }
}
