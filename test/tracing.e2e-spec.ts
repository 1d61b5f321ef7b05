import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signWebhook } from '../src/auth/webhook-signature';
import { bootApp, eventually, TestApp } from './support/app';
import { jsonl } from './support/delivery';
import { FakeDownstream } from './support/fake-downstream';
import { mirrorServiceEnv, startService } from './support/process';
import { notification } from './support/s3-events';
import { emulatorEndpoint, newBucket, put, testS3 } from './support/s3';

const SECRET = 'tracing-e2e-webhook-secret';

describe('tracing (OpenTelemetry, in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const s3 = testS3();
  let down: FakeDownstream;
  let t: TestApp;

  beforeAll(async () => {
    provider.register();
    down = await new FakeDownstream().start();
  });
  afterAll(async () => {
    await t?.close();
    await down.stop();
    await provider.shutdown();
    trace.disable();
    s3.destroy();
  });

  it('follows one notification from the webhook request to its delivered batch, traceparent included', async () => {
    const bucket = await newBucket(s3);
    t = await bootApp(
      {
        S3_BUCKET_NAME: bucket,
        S3_ENDPOINT: emulatorEndpoint(),
        WEBHOOK_SECRET: SECRET,
        CALL_DETAILS_URL: down.recordsUrl,
        AUTH_URL: down.authUrl,
        ACCESS_KEY: down.accessKey,
        SECRET_KEY: down.secretKey,
      },
      { tracing: true },
    );
    const body = jsonl(0, 20, 'traced');
    await put(s3, bucket, 'traced/calls.jsonl', body);
    const raw = JSON.stringify(
      notification({ bucket, key: 'traced/calls.jsonl', op: 'put', size: body.length, etag: createHash('md5').update(body).digest('hex') }),
    );
    // The sender's own trace: the service's spans join it.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await t
      .http()
      .post('/api/v1/s3-notification')
      .set('content-type', 'application/json')
      .set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`)
      .set(signWebhook(SECRET, raw, Date.now()))
      .send(raw)
      .expect(202);
    await eventually(
      () => down.delivered().length,
      (n) => n === 20,
      15_000,
      'the records delivered',
    );
    const spans = await eventually(
      () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId),
      (list) => list.some((s) => s.name === 'delivery.file'),
      5_000,
      'the delivery span ended',
    );
    const byName = (name: string): ReadableSpan => {
      const found = spans.find((s) => s.name === name);
      if (!found) throw new Error(`no span ${name} among ${spans.map((s) => s.name).join(', ')}`);
      return found;
    };
    const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
    const request = byName('POST /api/v1/s3-notification');
    const apply = byName('event.apply');
    const download = byName('mirror.download');
    const file = byName('delivery.file');
    const batch = byName('delivery.batch');
    expect(parentOf(request)).toBe('00f067aa0ba902b7');
    expect(request.attributes).toMatchObject({ 'http.route': '/api/v1/s3-notification', 'http.response.status_code': 202 });
    expect(parentOf(apply)).toBe(request.spanContext().spanId);
    expect(apply.attributes).toMatchObject({ 's3.key': 'traced/calls.jsonl', 'event.result': 'downloaded', 'event.source': 'webhook' });
    expect(parentOf(download)).toBe(apply.spanContext().spanId);
    expect(parentOf(file)).toBe(download.spanContext().spanId);
    expect(parentOf(batch)).toBe(file.spanContext().spanId);
    // The downstream saw the batch's span as its caller.
    const delivered = down.requests.find((r) => r.status === 200);
    expect(delivered?.traceparent).toBe(`00-${traceId}-${batch.spanContext().spanId}-01`);
  });
});

describe('OTEL_EXPORTER_OTLP_ENDPOINT (the built service)', () => {
  it('exports its spans to the collector over OTLP/HTTP', async () => {
    const received: string[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') received.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const s3 = testS3();
    const bucket = await newBucket(s3);
    await put(s3, bucket, 'a.txt', 'a');
    const service = await startService({
      ...mirrorServiceEnv(bucket, 'otlp'),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_SERVICE_NAME: 'mirror-under-test',
    });
    try {
      await fetch(`${service.url}/api/v1/sync`, { method: 'POST' });
      // The batch processor sends within its 5 s delay, or at shutdown at the latest.
      service.child.kill('SIGTERM');
      expect((await service.exited).code).toBe(0);
      const all = received.join('\n');
      expect(all).toContain('sync.run');
      expect(all).toContain('mirror.download');
      expect(all).toContain('POST /api/v1/sync');
      expect(all).toContain('mirror-under-test');
    } finally {
      service.child.kill('SIGKILL');
      collector.close();
      s3.destroy();
    }
  });
});
