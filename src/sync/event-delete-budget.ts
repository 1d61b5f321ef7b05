/**
 * How many deletes S3 events may apply within a sliding window (MAX_DELETE per
 * EVENT_DELETE_WINDOW_SECONDS), the event-side twin of a full sync's delete guard: a sender that
 * can sign, or a flood of real removals, cannot empty the mirror faster than an operator can look.
 * A delete beyond the budget is held: it waits for an operator's retry or the next full sync.
 * The window is this process's own: with several replicas the bound is per replica.
 */
export class EventDeleteBudget {
  /** When each delete of the window was taken, oldest first. */
  private readonly taken: number[] = [];

  constructor(
    private readonly maxDelete: number,
    private readonly windowMs: number,
  ) {}

  /**
   * Takes one delete at `nowMs`; returns why it must wait instead, or undefined when taken.
   * `mirroredFiles` is asked only when the window already holds deletes (it is a count of the manifest).
   */
  take(nowMs: number, mirroredFiles: () => number): string | undefined {
    while (this.taken.length > 0 && this.taken[0] <= nowMs - this.windowMs) this.taken.shift();
    const windowSeconds = this.windowMs / 1000;
    if (this.maxDelete >= 0 && this.taken.length >= this.maxDelete) {
      return `more than MAX_DELETE (${this.maxDelete}) deletes from events within EVENT_DELETE_WINDOW_SECONDS (${windowSeconds}); held until an operator retries it or a full sync deletes the file`;
    }
    // The last file of a mirror that events have been emptying is the "everything" a full sync refuses too.
    if (this.taken.length > 0 && mirroredFiles() <= 1) {
      return `would delete the last mirrored file after ${this.taken.length} other deletes from events within EVENT_DELETE_WINDOW_SECONDS (${windowSeconds}); held until an operator retries it or a full sync deletes the file`;
    }
    this.taken.push(nowMs);
    return undefined;
  }

  /** Gives back a delete that was taken and then not applied. */
  giveBack(nowMs: number): void {
    const i = this.taken.lastIndexOf(nowMs);
    if (i >= 0) this.taken.splice(i, 1);
  }
}
