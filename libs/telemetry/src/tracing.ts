import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, type SpanExporter, type SpanProcessor, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { partitionFields, serviceInstanceId } from './instance';

export interface TracingConfig {
  service: string;
  /** OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); off when absent. */
  otlpEndpoint?: string;
  /** Extra exporters (tests use an in-memory one); exported synchronously. */
  exporters?: SpanExporter[];
}

export interface Tracing {
  provider: TracerProvider;
  shutdown(): Promise<void>;
}

/** The OTLP endpoint from FEDGATE_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, if any. */
export function otlpEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.FEDGATE_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || undefined;
}

/** Adds `fedgate.partitions` (`{"state-resolver":"0-3"}`) to every span started while partitions are owned. */
const partitionsOnSpans: SpanProcessor = {
  onStart: (span) => {
    const { partitions } = partitionFields();
    if (partitions) span.setAttribute('fedgate.partitions', JSON.stringify(partitions));
  },
  onEnd: () => undefined,
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/**
 * Registers a tracer provider, async-hooks context and the W3C propagator globally. Spans are
 * always created, so logs and bus headers carry trace IDs; they are recorded only when an exporter
 * is configured. With none, every span is a non-recording one (IDs and context, no attributes, no
 * span processors, nothing kept): the recording spans cost ~5% of the gateway's CPU under inbound
 * load for nothing that left the process (issue 19). With an exporter every span is recorded, a
 * parent from another process that did not record included (its flags say "not sampled"). The SDK
 * 3 provider reads no OTEL_* variables (sampler, limits, batch sizes): what is configured is what is
 * written here.
 */
export function setupTracing(config: TracingConfig): Tracing {
  // First, so exporters see it: the partitions this process owned when each span started.
  const spanProcessors: SpanProcessor[] = [partitionsOnSpans, ...(config.exporters ?? []).map((exporter) => new SimpleSpanProcessor({ exporter }))];
  const endpoint = config.otlpEndpoint ?? otlpEndpointFromEnv();
  if (endpoint) spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: endpoint }) }));
  const exporting = spanProcessors.length > 1;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.service, 'service.instance.id': serviceInstanceId() }),
    spanProcessors: exporting ? spanProcessors : [],
    sampler: exporting ? new AlwaysOnSampler() : new AlwaysOffSampler(),
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    provider,
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
