import { emfDocuments, emfName } from './metrics.emf';
import { counterValue, histogramQuantile, Metrics } from './metrics.service';

describe('Metrics', () => {
  it('estimates quantiles from the histogram buckets as histogram_quantile does', async () => {
    const m = new Metrics();
    expect(await histogramQuantile(m.eventLatency, 0.5)).toEqual({ value: null, count: 0 });
    // 10 observations in (0.01, 0.025], 10 in (0.1, 0.25].
    for (let i = 0; i < 10; i++) m.eventLatency.observe({ source: 'webhook' }, 0.02);
    for (let i = 0; i < 10; i++) m.eventLatency.observe({ source: 'sqs' }, 0.2);
    expect(await histogramQuantile(m.eventLatency, 0.5)).toEqual({ value: 0.025, count: 20 });
    const p99 = await histogramQuantile(m.eventLatency, 0.99);
    expect(p99.value).toBeCloseTo(0.1 + 0.15 * (9.8 / 10), 10);
    expect((await histogramQuantile(m.eventLatency, 0.5, { source: 'sqs' })).value).toBeCloseTo(0.175, 10);
    m.eventLatency.observe({ source: 'sqs' }, 10_000);
    expect((await histogramQuantile(m.eventLatency, 1, { source: 'sqs' })).value).toBe(600);
  });

  it('sums a counter over the series that carry the labels asked for', async () => {
    const m = new Metrics();
    m.events.inc({ source: 'webhook', outcome: 'accepted' }, 3);
    m.events.inc({ source: 'sqs', outcome: 'accepted' }, 2);
    m.events.inc({ source: 'sqs', outcome: 'rejected' });
    expect(await counterValue(m.events)).toBe(6);
    expect(await counterValue(m.events, { outcome: 'accepted' })).toBe(5);
    expect(await counterValue(m.events, { source: 'sqs', outcome: 'rejected' })).toBe(1);
  });

  it('fills a computed gauge from its reader when scraped', async () => {
    const m = new Metrics();
    let open = 1;
    m.read(m.breakerOpen, async () => [{ labels: { endpoint: 'https://api.example.com/calls' }, value: open }]);
    expect(await m.registry.getSingleMetricAsString('s3sync_circuit_breaker_open')).toContain(
      's3sync_circuit_breaker_open{endpoint="https://api.example.com/calls"} 1',
    );
    open = 0;
    expect(await m.registry.getSingleMetricAsString('s3sync_circuit_breaker_open')).toContain('} 0');
  });
});

describe('CloudWatch EMF', () => {
  it('names metrics as CloudWatch users expect', () => {
    expect(emfName('s3sync_circuit_breaker_open')).toBe('CircuitBreakerOpen');
    expect(emfName('s3sync_events_total')).toBe('Events');
    expect(emfName('s3sync_event_commit_latency_seconds')).toBe('EventCommitLatency');
  });

  it('writes counters as increases, gauges as values, histograms as count and mean, labels as dimensions', async () => {
    const m = new Metrics();
    m.read(m.breakerOpen, async () => [{ labels: { endpoint: 'https://api.example.com/calls' }, value: 1 }]);
    m.events.inc({ source: 'webhook', outcome: 'accepted' }, 4);
    m.eventLatency.observe({ source: 'webhook' }, 0.2);
    m.eventLatency.observe({ source: 'webhook' }, 0.4);
    const previous = new Map<string, number>();
    const first = emfDocuments(await m.registry.getMetricsAsJSON(), previous, 1_796_000_000_000, 'S3SyncService');
    const find = (docs: typeof first, name: string) => docs.find((d) => name in d);
    expect(find(first, 'CircuitBreakerOpen')).toEqual({
      _aws: {
        Timestamp: 1_796_000_000_000,
        CloudWatchMetrics: [
          { Namespace: 'S3SyncService', Dimensions: [['endpoint']], Metrics: [{ Name: 'CircuitBreakerOpen', Unit: 'Count' }] },
        ],
      },
      endpoint: 'https://api.example.com/calls',
      CircuitBreakerOpen: 1,
    });
    expect(find(first, 'Events')).toMatchObject({ source: 'webhook', outcome: 'accepted', Events: 4 });
    expect(find(first, 'EventCommitLatencyCount')).toMatchObject({ EventCommitLatencyCount: 2 });
    const mean = find(first, 'EventCommitLatencyMean');
    expect(mean?.EventCommitLatencyMean).toBeCloseTo(0.3, 10);
    expect(mean?._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: 'EventCommitLatencyMean', Unit: 'Seconds' }]);
    // Only the service's own metrics.
    expect(first.every((d) => !Object.keys(d).some((k) => k.startsWith('Process') || k.startsWith('Nodejs')))).toBe(true);

    m.events.inc({ source: 'webhook', outcome: 'accepted' });
    const second = emfDocuments(await m.registry.getMetricsAsJSON(), previous, 1_796_000_060_000, 'S3SyncService');
    expect(find(second, 'Events')).toMatchObject({ Events: 1 });
    expect(find(second, 'EventCommitLatencyCount')).toMatchObject({ EventCommitLatencyCount: 0 });
    expect(find(second, 'EventCommitLatencyMean')).toBeUndefined();
  });
});
