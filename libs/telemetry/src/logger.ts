import { trace } from '@opentelemetry/api';
import { partitionFields, serviceInstanceId } from './instance';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactSecrets } from './redaction';

/** trace_id and span_id of the active span, for every log line written inside it. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

export interface LoggerConfig {
  service: string;
  level?: string;
  destination?: DestinationStream;
}

/** JSON logs (pino) carrying the service name and the active trace; tokens are redacted from every line. */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level ?? process.env.FEDGATE_LOG_LEVEL ?? 'info',
    base: { service: config.service, 'service.instance.id': serviceInstanceId() },
    mixin: () => ({ ...partitionFields(), ...traceFields() }),
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { streamWrite: redactSecrets },
  };
  return config.destination ? pino(options, config.destination) : pino(options);
}

export type { Logger } from 'pino';
