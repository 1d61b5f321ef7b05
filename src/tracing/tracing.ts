/**
 * The service's spans, through the OpenTelemetry API only: without a registered provider (tracing
 * off, the default) every call here is the API's no-op, so the code pays a function call and no
 * SDK is loaded (see start-tracing.ts for when one is).
 */
import { Attributes, context, propagation, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { errorMessage } from '../common/errors';

const tracer = trace.getTracer('s3-sync-service');

/** Runs `work` in a span of its own, a child of the active one; an error ends the span with it. */
export function traced<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL): Promise<T> {
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(errorMessage(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** `headers` with the active trace's W3C `traceparent` (and `tracestate`) added, for an outgoing request. */
export function withTraceHeaders(headers: Record<string, string>): Record<string, string> {
  const carrier = { ...headers };
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** `work` bound to the trace active now, for work that a queue runs later in another context. */
export function inCurrentTrace<T>(work: () => Promise<T>): () => Promise<T> {
  return context.bind(context.active(), work);
}

export { SpanKind };
