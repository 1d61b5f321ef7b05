import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';
import { Clock } from '../common/clock';
import { detach } from '../common/detach';
import { AppConfig } from '../config/app-config';
import { Metrics } from './metrics.service';

const OWN_PREFIX = 's3sync_';

/** One CloudWatch Embedded Metric Format document: one metric, one set of dimension values. */
export interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }>;
  };
  [field: string]: unknown;
}

/** `s3sync_circuit_breaker_open` -> `CircuitBreakerOpen`; `_total` dropped, `_seconds` kept as a unit. */
export function emfName(promName: string): string {
  return promName
    .replace(OWN_PREFIX, '')
    .replace(/_total$/, '')
    .replace(/_seconds$/, '')
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

type Labels = Partial<Record<string, string | number>>;
const seriesKey = (name: string, labels: Labels): string =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;

/**
 * The service's own metrics (not the process ones) as EMF documents, from a registry's JSON:
 * counters as their increase since `previous` (CloudWatch sums them per period), gauges as their
 * value, histograms as the count and the mean of the observations since `previous`. Labels become
 * dimensions. `previous` is updated with the totals seen.
 */
export function emfDocuments(
  metrics: MetricObjectWithValues<MetricValue<string>>[],
  previous: Map<string, number>,
  timestamp: number,
  namespace: string,
): EmfDocument[] {
  const docs: EmfDocument[] = [];
  const doc = (name: string, unit: string, labels: Labels, value: number): void => {
    const dimensions = Object.keys(labels).filter((k) => k !== 'le');
    const fields = Object.fromEntries(dimensions.map((k) => [k, String(labels[k])]));
    docs.push({
      _aws: {
        Timestamp: timestamp,
        CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [dimensions], Metrics: [{ Name: name, Unit: unit }] }],
      },
      ...fields,
      [name]: value,
    });
  };
  const increase = (key: string, total: number): number => {
    const delta = total - (previous.get(key) ?? 0);
    previous.set(key, total);
    // A counter reset (a registry replaced) counts from zero again.
    return delta < 0 ? total : delta;
  };
  for (const metric of metrics) {
    if (!metric.name.startsWith(OWN_PREFIX)) continue;
    const name = emfName(metric.name);
    // prom-client's types say a numeric enum; the values at run time are these strings.
    const type = String(metric.type as unknown);
    if (type === 'counter') {
      for (const v of metric.values) doc(name, 'Count', v.labels, increase(seriesKey(metric.name, v.labels), v.value));
    } else if (type === 'gauge') {
      for (const v of metric.values) doc(name, 'Count', v.labels, v.value);
    } else if (type === 'histogram') {
      const values = metric.values as MetricValueWithName<string>[];
      const sums = new Map<string, number>();
      for (const v of values) if (v.metricName?.endsWith('_sum')) sums.set(seriesKey(metric.name, v.labels), v.value);
      for (const v of values) {
        if (!v.metricName?.endsWith('_count')) continue;
        const key = seriesKey(metric.name, v.labels);
        const count = increase(`${key}#count`, v.value);
        const sum = increase(`${key}#sum`, sums.get(key) ?? 0);
        doc(`${name}Count`, 'Count', v.labels, count);
        if (count > 0) doc(`${name}Mean`, metric.name.endsWith('_seconds') ? 'Seconds' : 'None', v.labels, sum / count);
      }
    }
  }
  return docs;
}

/**
 * METRICS_EMF=true: every METRICS_EMF_INTERVAL_SECONDS, the service's figures as CloudWatch EMF lines
 * on stdout, where the awslogs driver (ECS, Lambda) turns them into metrics without an agent, so
 * that alarms (breaker open, dead letters, latency) can be built on them.
 */
@Injectable()
export class MetricsEmf implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsEmf.name);
  private readonly previous = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    const { emf, emfIntervalMs } = this.config.metrics;
    if (!emf) return;
    this.timer = setInterval(() => detach(this.flush(), this.logger, 'EMF metrics could not be written'), emfIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    await this.flush();
  }

  async flush(): Promise<void> {
    const docs = emfDocuments(
      await this.metrics.registry.getMetricsAsJSON(),
      this.previous,
      this.clock.nowMs(),
      this.config.metrics.emfNamespace,
    );
    if (docs.length > 0) process.stdout.write(docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  }
}
