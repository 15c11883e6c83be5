export { createLogger, traceFields, type Logger, type LoggerConfig } from './logger';
export { setupTracing, otlpEndpointFromEnv, type Tracing, type TracingConfig } from './tracing';
export { boundedLabel, createMetricsRegistry, MAX_LABEL_VALUES, OVERFLOW_LABEL, prometheusBusObserver, registerConsumerGauges, registerPartitionLagGauges, serveMetrics, type PartitionConsumers, type MetricsServer } from './metrics';
export { redactSecrets, redactUrl, REDACTED } from './redaction';
export { serviceInstanceId, setServiceInstanceId, setOwnedPartitions, ownedPartitions, compactPartitions, partitionFields } from './instance';
export { startHttpServerSpan, endHttpServerSpan, withHttpClientSpan, type HttpClientSpanRequest, type HttpServerSpanRequest } from './http-spans';
export { QueuedWorkTraces } from './queued-traces';
export { startPhaseSpan, withPhaseSpan } from './internal-spans';
export { answerHealth, markServiceStarted, readiness, registerReadinessCheck, READINESS_CHECK_TIMEOUT_MS, type Readiness, type ReadinessCheck } from './health';
