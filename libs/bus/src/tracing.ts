// OpenTelemetry context through message headers (W3C traceparent), producer and consumer spans.
import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Headers } from './bus';

let cached: { provider: TracerProvider; tracer: Tracer } | undefined;
/** The bus's tracer, asked of the provider once per provider (issue 19: `getTracer` per message was ~1% of the gateway's CPU). */
export const tracer = (): Tracer => {
  const provider = trace.getTracerProvider();
  if (cached?.provider !== provider) cached = { provider, tracer: provider.getTracer('@fedgate/bus') };
  return cached.tracer;
};
// Used directly rather than the global propagator, so headers carry trace context even if the
// service registered none.
const w3c = new W3CTraceContextPropagator();

const headerSetter = { set: (carrier: Headers, key: string, value: string) => (carrier[key] = value) };
const headerGetter = {
  get: (carrier: Headers, key: string) => carrier[key] ?? carrier[key.toLowerCase()],
  keys: (carrier: Headers) => Object.keys(carrier),
};

function baseAttributes(destination: string, messageId: string) {
  return {
    'messaging.system': 'nats',
    'messaging.system.name': 'nats',
    'messaging.destination.name': destination,
    'messaging.message.id': messageId,
  };
}

/** Runs `send` inside a producer span, with the span's context injected into `headers`. */
export async function withProducerSpan<R>(destination: string, messageId: string, headers: Headers, send: () => Promise<R>): Promise<R> {
  return tracer().startActiveSpan(
    `send ${destination}`,
    { kind: SpanKind.PRODUCER, attributes: { ...baseAttributes(destination, messageId), 'messaging.operation.type': 'send' } },
    async (span) => {
      const active = context.active();
      w3c.inject(active, headers, headerSetter);
      propagation.inject(active, headers, headerSetter);
      return endSpanAfter(span, send);
    },
  );
}

export function extractContext(headers: Headers): Context {
  return w3c.extract(propagation.extract(context.active(), headers, headerGetter), headers, headerGetter);
}

/** Runs `handle` in a consumer span whose parent is the producer's context from the headers. */
export async function withConsumerSpan<R>(
  destination: string,
  messageId: string,
  consumer: string,
  headers: Headers,
  handle: () => Promise<R>,
  extra: Record<string, string | number> = {},
): Promise<R> {
  return tracer().startActiveSpan(
    `process ${destination}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { ...baseAttributes(destination, messageId), 'messaging.consumer.group.name': consumer, 'messaging.operation.type': 'process', ...extra },
    },
    extractContext(headers),
    (span) => endSpanAfter(span, handle),
  );
}

/** Runs `work` and ends `span` after it, recording a failure on the span before rethrowing it. */
export async function endSpanAfter<R>(span: Span, work: () => Promise<R>): Promise<R> {
  try {
    return await work();
  } catch (error) {
    recordSpanError(span, error as Error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks `span` failed: the exception as an event, the status ERROR with its message. */
export function recordSpanError(span: Span, error: Error): void {
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

export function setSpanOutcome(outcome: string): void {
  trace.getActiveSpan()?.setAttribute('fedgate.bus.outcome', outcome);
}
