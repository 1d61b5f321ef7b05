import type { Logger } from '@nestjs/common';
import { errorMessage } from './errors';

let failures = 0;

/**
 * Lets `work` run on without awaiting it, with its failure logged and counted. Every call that is
 * not awaited goes through here: an unhandled rejection would end the process.
 */
export function detach(work: Promise<unknown>, logger: Pick<Logger, 'error'>, what: string, context: Record<string, unknown> = {}): void {
  work.catch((err: unknown) => {
    failures++;
    logger.error({ ...context, err: errorMessage(err) }, what);
  });
}

/** How many detached calls failed since the process started (shown in /api/v1/stats). */
export function detachedFailures(): number {
  return failures;
}
