import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One reading of a gauge that is computed when scraped (from the state store, the breakers). */
export interface GaugeSample<L extends string> {
  labels: Partial<Record<L, string>>;
  value: number;
}

/** Seconds, from 5 ms to 10 min: downloads, event commits and delivery requests all fall in it. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds, from 100 ms to 6 h: whole sync runs. */
const RUN_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600];

/**
 * Every figure the service reports, in one registry: scraped by GET /metrics (Prometheus text),
 * written as CloudWatch EMF by MetricsEmf, and read by GET /api/v1/stats. The counters are moved by
 * the code that does the work; the gauges read their source (the state store, the breakers) when
 * scraped, through a reader the owner of that source installs with `read`.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();
  /** Declared before the gauges: their field initialisers capture it. */
  private readonly readers = new Map<Gauge, () => Promise<GaugeSample<string>[]>>();

  readonly syncRuns = this.counter('s3sync_sync_runs_total', 'Full sync runs, by final status', ['status']);
  readonly syncObjects = this.counter('s3sync_sync_objects_total', 'Objects of full syncs, by what was done', ['result']);
  readonly syncBytes = this.counter('s3sync_sync_downloaded_bytes_total', 'Bytes downloaded by full syncs', []);
  readonly syncDuration = this.histogram('s3sync_sync_run_duration_seconds', 'Duration of full sync runs', [], RUN_BUCKETS);

  readonly events = this.counter('s3sync_events_total', 'S3 event records received, by source and triage', ['source', 'outcome']);
  readonly eventsApplied = this.counter('s3sync_events_applied_total', 'Event changes applied, by source and result', ['source', 'result']);
  readonly eventDeletesHeld = this.counter(
    's3sync_event_deletes_held_total',
    'Deletes from events held beyond MAX_DELETE per EVENT_DELETE_WINDOW_SECONDS, waiting for an operator or a full sync',
    [],
  );
  readonly eventLatency = this.histogram(
    's3sync_event_commit_latency_seconds',
    'From an event accepted to its change committed',
    ['source'],
    LATENCY_BUCKETS,
  );
  readonly inbox = this.gauge('s3sync_events_inbox', 'Webhook events in the durable inbox, by status', ['status']);

  readonly records = this.counter('s3sync_delivery_records_total', 'Records parsed, sent and dead-lettered', ['outcome']);
  readonly batches = this.counter('s3sync_delivery_batches_total', 'Delivery batches, by outcome', ['outcome']);
  readonly requestDuration = this.histogram(
    's3sync_delivery_request_duration_seconds',
    'Delivery POSTs (records and bundles), by target and outcome',
    ['target', 'outcome'],
    LATENCY_BUCKETS,
  );
  readonly retries = this.counter('s3sync_delivery_retries_total', 'Delivery requests retried after a failure', ['target']);
  readonly logins = this.counter('s3sync_delivery_logins_total', 'Logins to the downstream, by outcome', ['outcome']);
  readonly files = this.gauge('s3sync_delivery_files', 'File versions in the delivery ledger, by status', ['status']);
  readonly breakerOpen = this.gauge('s3sync_circuit_breaker_open', '1 while the endpoint’s circuit breaker is open or probing', [
    'endpoint',
  ]);
  readonly bundles = this.gauge('s3sync_bundles', 'Bundles in the store, by status', ['status']);

  /** `processMetrics`: also Node's own (CPU, memory, event loop lag, GC), as the service exposes them. */
  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Installs the source of a computed gauge (one per gauge; the last one installed wins). */
  read<L extends string>(gauge: Gauge<L>, reader: () => Promise<GaugeSample<L>[]>): void {
    this.readers.set(gauge as Gauge, reader as () => Promise<GaugeSample<string>[]>);
  }

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    const readers = this.readers;
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect(this: Gauge<L>) {
        const reader = readers.get(this as Gauge);
        if (!reader) return;
        const samples = await reader();
        this.reset();
        for (const s of samples) this.set(s.labels as Partial<Record<L, string>>, s.value);
      },
    });
  }
}

/**
 * A quantile of a histogram's observations with `labels`, as Prometheus's histogram_quantile
 * computes it (linear within the bucket); null without observations.
 */
export async function histogramQuantile<L extends string>(
  histogram: Histogram<L>,
  q: number,
  labels: Partial<Record<L, string>> = {},
): Promise<{ value: number | null; count: number }> {
  const metric = await histogram.get();
  const buckets = new Map<number, number>();
  for (const v of metric.values) {
    const l = v.labels as Record<string, string | number | undefined>;
    if (v.metricName !== `${metric.name}_bucket` || !Object.entries(labels).every(([k, want]) => l[k] === want)) continue;
    const le = l.le === '+Inf' ? Infinity : Number(l.le);
    buckets.set(le, (buckets.get(le) ?? 0) + v.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const count = sorted.at(-1)?.[1] ?? 0;
  if (count === 0) return { value: null, count };
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of sorted) {
    if (cumulative >= rank) {
      // The +Inf bucket has no upper bound: its lower edge is the best estimate, as in Prometheus.
      if (le === Infinity) return { value: lower, count };
      const inBucket = cumulative - below;
      return { value: inBucket === 0 ? le : lower + (le - lower) * ((rank - below) / inBucket), count };
    }
    lower = le;
    below = cumulative;
  }
  return { value: lower, count };
}

/** The sum of a counter's series that carry `labels` (all of them without). */
export async function counterValue<L extends string>(counter: Counter<L>, labels: Partial<Record<L, string>> = {}): Promise<number> {
  let total = 0;
  for (const v of (await counter.get()).values) {
    const l = v.labels as Record<string, string | number | undefined>;
    if (Object.entries(labels).every(([k, want]) => l[k] === want)) total += v.value;
  }
  return total;
}
