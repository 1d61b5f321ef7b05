import { setImmediate as nextTurn } from 'node:timers/promises';
import { compareUtf8 } from '../common/utf8-order';
import type { CommittedRow, ManifestEntry, ManifestStore } from '../state/manifest.store';

/**
 * Manifest rows read by one statement. A page's key range is one statement; a gap of a million
 * rows (a folder deleted from the bucket) is read in batches with a turn of the event loop between.
 */
const RANGE_BATCH = 2000;

export interface ReconciledRun {
  id: string;
  prefix: string;
  /** When the run began: a row committed later was brought in by an event, not left over. */
  sinceMs: number;
}

/**
 * Finds the mirrored files a run's listing no longer has, page by page.
 *
 * S3 lists a general purpose bucket in UTF-8 byte order, which is SQLite's order for TEXT. Each page
 * is compared with the manifest rows of the key range it covers: one statement gives the committed
 * versions of its keys, and the rows it went past without listing are recorded. Nothing is written
 * for a key that is still there and nothing is left to search when the listing ends. Staging every
 * listed key and searching the manifest for the unstaged rows at the end cost 4 µs a key and held
 * the event loop for 2 s at 1,000,000 keys (`npm run bench:scale`).
 *
 * An endpoint that lists in no order (directory buckets) has every listed key staged instead. A walk
 * that meets a key out of order is turned into a staged listing and goes on as one.
 */
export class ListingReconciler {
  private ordered: boolean;
  /** The walk has compared every manifest row up to this key, inclusive; '' before the first page. */
  private walkedTo = '';

  constructor(
    private readonly manifest: ManifestStore,
    private readonly run: ReconciledRun,
    private readonly options: { ordered: boolean; onDisorder: (detail: string) => void },
  ) {
    this.ordered = options.ordered;
  }

  /** Takes the next page's keys; returns the committed versions the manifest has for them. */
  async page(keys: readonly string[]): Promise<Map<string, { etag: string; size: number }>> {
    if (this.ordered) {
      const disorder = outOfOrder(this.walkedTo, keys);
      if (disorder) {
        this.options.onDisorder(disorder);
        if (this.walkedTo !== '') this.manifest.stageWalked(this.run.id, this.run.prefix, this.walkedTo);
        this.ordered = false;
      }
    }
    if (!this.ordered) {
      this.manifest.stageListing(this.run.id, keys);
      return this.manifest.committedMany(keys);
    }
    const found = new Map<string, CommittedRow>();
    if (keys.length > 0) await this.walk(keys[keys.length - 1], { listed: new Set(keys), found });
    return found;
  }

  /** Called once the listing is complete: the rows after its last key are unlisted too. */
  async finish(): Promise<void> {
    if (this.ordered) await this.walk(null);
  }

  /** How many files `gone` would yield. */
  count(): number {
    const { id, prefix, sinceMs } = this.run;
    return this.ordered ? this.manifest.countUnlisted(id, sinceMs) : this.manifest.countMissingFromListing(id, prefix, sinceMs);
  }

  /** Manifest entries committed before the run began that the listing did not have, in key order. */
  gone(): Generator<ManifestEntry> {
    const { id, prefix, sinceMs } = this.run;
    return this.ordered ? this.manifest.unlisted(id, sinceMs) : this.manifest.missingFromListing(id, prefix, sinceMs);
  }

  /**
   * Compares the manifest rows in (walkedTo, upTo] (upTo null: to the end of the prefix) with a
   * page's keys: the listed ones go into `found`, the others are recorded as unlisted.
   */
  private async walk(upTo: string | null, page?: { listed: Set<string>; found: Map<string, CommittedRow> }): Promise<void> {
    for (;;) {
      const rows = this.manifest.committedRange(this.run.prefix, this.walkedTo, upTo, RANGE_BATCH);
      const unlisted: string[] = [];
      for (const row of rows) {
        // A row an event committed after the run began is recorded too; gone() leaves it out.
        if (page?.listed.has(row.key)) page.found.set(row.key, row);
        else unlisted.push(row.key);
      }
      this.manifest.recordUnlisted(this.run.id, unlisted);
      if (rows.length < RANGE_BATCH) break;
      this.walkedTo = rows[rows.length - 1].key;
      await nextTurn();
    }
    if (upTo !== null) this.walkedTo = upTo;
  }
}

/** Why `keys` cannot follow `after` in a listing in key order, if they cannot. */
function outOfOrder(after: string, keys: readonly string[]): string | undefined {
  let previous = after;
  for (const key of keys) {
    if (previous !== '' && compareUtf8(previous, key) >= 0) return `"${key}" came after "${previous}"`;
    previous = key;
  }
  return undefined;
}
