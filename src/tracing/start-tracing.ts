import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';

/**
 * Starts the OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set: spans batched to that
 * collector over OTLP/HTTP (the ADOT collector forwards them to X-Ray), W3C trace context in and
 * out. The SDK is imported here only then, so that a service without tracing loads none of it.
 */
export async function startTracing(options: { endpoint: string; serviceName: string; version: string }): Promise<() => Promise<void>> {
  const [{ NodeTracerProvider }, { BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.version }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, '')}/v1/traces` }))],
  });
  // Sets the AsyncLocalStorage context manager and the W3C propagator as the API's globals.
  provider.register();
  return () => provider.shutdown();
}

/**
 * The server span of each HTTP request, a child of the caller's `traceparent` when it sends one;
 * named by the route pattern (never the object key in the path) once the router has matched it.
 */
export function requestSpans(req: Request, res: Response, next: NextFunction): void {
  const parent = propagation.extract(context.active(), req.headers);
  const span = trace
    .getTracer('s3-sync-service')
    .startSpan(`${req.method}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method } }, parent);
  res.once('finish', () => {
    const route = (req.route as { path?: string } | undefined)?.path;
    span.updateName(route ? `${req.method} ${req.baseUrl}${route}` : `${req.method} (unmatched)`);
    if (route) span.setAttribute('http.route', `${req.baseUrl}${route}`);
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), next);
}
