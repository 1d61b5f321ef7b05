import { ExponentialBackoff, handleWhen, retry, type IBackoffFactory, type IRetryBackoffContext } from 'cockatiel';

/**
 * The retry layers of the service's outside calls, in one place. Each outside call is retried at
 * one layer, never at two nested ones (a failing range would otherwise cost attempts x attempts GETs):
 *
 * - a listing page: the listing layer in S3Repository (RETRY_ATTEMPTS retries);
 * - a HEAD: the SDK's own retries (maxAttempts = RETRY_ATTEMPTS + 1);
 * - a byte range of a large object: the range layer in ObjectFetcher;
 * - a whole object: the object layer in MirrorService, which also starts the object again for what
 *   no inner layer can mend (its bytes failed their check, or it changed under a ranged read);
 * - a delivery request or login: deliveryRetryPolicy (MAX_RETRIES, honouring Retry-After).
 *
 * An error that has used up the attempts of its layer is marked spent, and no outer layer takes it
 * for another round: a range that failed RETRY_ATTEMPTS + 1 times fails its object at once.
 */
export class RetryLayer {
  private readonly policy;

  constructor(
    /** What this layer retries; an error an inner layer already spent its attempts on is never retried again. */
    private readonly handles: (err: Error) => boolean,
    maxAttempts: number,
    backoff: IBackoffFactory<IRetryBackoffContext<unknown>> = new ExponentialBackoff({ initialDelay: 200, maxDelay: 10_000 }),
  ) {
    this.policy = retry(
      handleWhen((err) => !isSpent(err) && handles(err)),
      { maxAttempts, backoff },
    );
  }

  /** Runs `work` with this layer's retries; what it still throws after them is marked spent. */
  async execute<T>(work: (context: { signal: AbortSignal }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await this.policy.execute(work, signal);
    } catch (err) {
      if (err instanceof Error && this.handles(err)) markSpent(err);
      throw err;
    }
  }

  onRetry(listener: (reason: { error: Error } | { value: unknown }) => void): void {
    this.policy.onRetry(listener);
  }
}

const SPENT = Symbol('retries spent');

/** Marks an error whose retries were used up by the layer that made the call (the SDK's, say). */
export function markSpent<E extends Error>(err: E): E {
  (err as E & { [SPENT]?: true })[SPENT] = true;
  return err;
}

export function isSpent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [SPENT]?: true })[SPENT] === true;
}
