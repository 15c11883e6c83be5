// The one place service-kit meets @fedgate/telemetry.
// SEAM(telemetry): @fedgate/telemetry exports nothing yet. When it does, build ServiceTelemetry from it
// in `createServiceTelemetry` (tracer/meter set-up from config.telemetry, request metrics, /metrics
// content, flush on shutdown); nothing else in service-kit needs to change.
import type { FedgateConfig } from '@fedgate/config';
import type { Logger } from 'pino';

export interface RequestObservation {
  listener: string;
  method: string;
  /** The route pattern (`/_matrix/federation/v1/send/:txnId`), or the raw URL for unmatched requests. */
  route: string;
  status: number;
  durationMs: number;
}

export interface ServiceTelemetry {
  /** Called once per finished HTTP request. */
  observeRequest?(observation: RequestObservation): void;
  /** Prometheus exposition for GET /metrics; absent = no /metrics route. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Flushes exporters; called last on shutdown. */
  shutdown?(): Promise<void>;
}

export function createServiceTelemetry(_config: FedgateConfig, _serviceName: string, _logger: Logger): ServiceTelemetry {
  return {};
}
