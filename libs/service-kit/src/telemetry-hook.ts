// The one place service-kit meets @fedgate/telemetry: traces (OTLP export only when configured), a
// Prometheus registry with HTTP request metrics, and the bus observer the platform passes to its bus.
import type { FedgateConfig } from '@fedgate/config';
import type { BusObserver } from '@fedgate/bus';
import { createMetricsRegistry, prometheusBusObserver, serveMetrics, setupTracing, type MetricsServer, type Tracing } from '@fedgate/telemetry';
import type { Logger } from 'pino';
import { Histogram, type Registry } from 'prom-client';

export interface RequestObservation {
  listener: string;
  method: string;
  /** The route pattern (`/_matrix/federation/v1/send/:txnId`), or `unmatched` (see `routeLabel`). */
  route: string;
  status: number;
  durationMs: number;
}

export interface ServiceTelemetry {
  /** Called once per finished HTTP request. */
  observeRequest?(observation: RequestObservation): void;
  /** Prometheus exposition for GET /metrics on internal listeners; absent = no /metrics route. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Where the platform registers bus and consumer metrics. */
  registry?: Registry;
  busObserver?: BusObserver;
  /** Starts the dedicated metrics listener when `telemetry.metricsPort` is configured. */
  start?(): Promise<void>;
  /** Flushes exporters; called last on shutdown. */
  shutdown?(): Promise<void>;
}

/** The `route` label for requests no route matched: one series, whatever the URL. */
export const UNMATCHED_ROUTE = 'unmatched';
const MAX_ROUTE_LABEL = 200;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/**
 * Label values come only from bounded sets: a route pattern registered in code, never a URL a client
 * chose (every distinct URL would be a new series, kept for the life of the process).
 */
export function routeLabel(pattern: string | undefined): string {
  if (pattern === undefined || pattern === '' || pattern.length > MAX_ROUTE_LABEL) return UNMATCHED_ROUTE;
  return pattern;
}

export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

// Tracing is process-global in OpenTelemetry: the first service of a process sets it up, the last one to
// stop shuts it down (tests and embedded mode run several services in one process).
let processTracing: { tracing: Tracing; users: number } | undefined;

function acquireTracing(serviceName: string, otlpEndpoint: string | undefined): () => Promise<void> {
  processTracing ??= { tracing: setupTracing({ service: `fedgate-${serviceName}`, otlpEndpoint }), users: 0 };
  processTracing.users++;
  let released = false;
  return async () => {
    if (released || !processTracing) return;
    released = true;
    if (--processTracing.users > 0) return;
    const { tracing } = processTracing;
    processTracing = undefined;
    await tracing.shutdown();
  };
}

export function createServiceTelemetry(config: FedgateConfig, serviceName: string, logger: Logger): ServiceTelemetry {
  const releaseTracing = acquireTracing(serviceName, config.telemetry.otlpEndpoint);
  const registry = createMetricsRegistry(serviceName);
  const requests = new Histogram({
    name: 'fedgate_http_request_duration_seconds',
    help: 'HTTP requests served, by listener, route and status',
    labelNames: ['listener', 'method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  let server: MetricsServer | undefined;
  return {
    registry,
    busObserver: prometheusBusObserver(registry),
    observeRequest: (o) => requests.observe({ listener: o.listener, method: methodLabel(o.method), route: routeLabel(o.route), status: String(o.status) }, o.durationMs / 1000),
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    async start() {
      if (config.telemetry.metricsPort === undefined) return;
      const host = config.telemetry.metricsBindAddress ?? '127.0.0.1';
      server = await serveMetrics(registry, config.telemetry.metricsPort, host);
      logger.info({ host, port: server.port }, 'metrics served at /metrics');
    },
    async shutdown() {
      await server?.close();
      await releaseTracing();
    },
  };
}
