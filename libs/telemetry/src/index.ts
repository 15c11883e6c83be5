export { createLogger, traceFields, type Logger, type LoggerConfig } from './logger';
export { setupTracing, otlpEndpointFromEnv, type Tracing, type TracingConfig } from './tracing';
export { createMetricsRegistry, prometheusBusObserver, registerConsumerGauges, serveMetrics, type MetricsServer } from './metrics';
export { serviceInstanceId, setServiceInstanceId, setOwnedPartitions, ownedPartitions, compactPartitions, partitionFields } from './instance';
