// First: loads @nestjs/common before anything else does, without the ICU cost of its logger's date formatter.
import './start-up/load-nest-common';
export { MatrixError, Errcode, type KnownErrcode, type MatrixErrorBody } from './http/matrix-error';
export { toMatrixError } from './http/to-matrix-error';
export { MatrixExceptionFilter } from './http/matrix-exception.filter';
export { installBodyParsers } from './http/body-parsers';
export { parseTimestampQuery } from './http/timestamp-query';
export { parseBooleanFlag } from './http/boolean-query';
export { localPublicRoomsAnswer, localPublicRoomsQuery, parsePublicRoomsBody, parsePublicRoomsQuery, type LocalPublicRoomsQuery, type PublicRoomsRequest } from './http/public-rooms-request';
export { createHttpApp, listenHttpApp, type HttpAppOptions, type HttpListenerOptions } from './http/http-app';
export { createLogger, PinoNestLogger, type Logger } from './logger';
export { createServiceTelemetry, type ServiceTelemetry, type RequestObservation } from './telemetry-hook';
export { ServiceRuntimeModule, serviceRootModule, FEDGATE_CONFIG, SERVICE_LOGGER, type ServiceRuntime } from './runtime.module';
export { FederationDiscoveryModule } from './federation-discovery/federation-discovery.module';
export { fedgateVersion } from './version';
export { installGracefulShutdown, type ShutdownOptions } from './shutdown';
export { ensureDataDir } from './first-start/data-dir';
export { ensureSigningKey, type SigningKeyFile } from './first-start/signing-key';
export { ensureSelfSignedCertificate, createSelfSignedCertificate, loadTlsMaterial, certificateNames, type TlsMaterial } from './first-start/tls-certificate';
export {
  startService,
  runService,
  readyLine,
  type ServiceDefinition,
  type ServiceModule,
  type SharedResources,
  type StartServiceOptions,
  type RunningService,
} from './start-service';
export { writeFileOnce } from './first-start/write-once';
