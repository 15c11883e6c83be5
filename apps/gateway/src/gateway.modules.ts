// What embedded mode mounts in its one process. Each service adds its Nest modules here as it lands.
// Note: Nx forbids importing from apps/, so a service's modules must be exported from a library
// (e.g. libs/<service>) to be mounted both here and by its own apps/<service>/src/main.ts.
import type { ServiceDefinition } from '@fedgate/service-kit';

export const gatewayDefinition: ServiceDefinition = {
  name: 'gateway',
  // Federation HTTPS listener. The discovery endpoints (/_matrix/federation/v1/version,
  // /.well-known/matrix/server) are always mounted by service-kit.
  federation: [
    // TODO(federation-ingress): /send, /make_join, /send_join, /state_ids, /_matrix/key/v2/server, …
  ],
  // Client-server (application service) HTTP listener on loopback.
  clientServer: [
    // TODO(chat-sync): the client-server subset for application services.
  ],
  // Bus consumers.
  workers: [
    // TODO(state-resolver): per-room-partition consumers.
    // TODO(federation-egress): destination queues and transaction senders.
    // TODO(chat-sync): AS transaction pushers.
  ],
  // SEAM(bus, store): embedded mode shares one EmbeddedBus (@fedgate/bus) and one SQLite store
  // (config.sqlite.path) between every module above; build them here and provide them, e.g.
  // shared: ({ config }) => ({ providers: [{ provide: BUS, useValue: bus }], close: () => bus.close() }).
};
