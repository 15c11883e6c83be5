// What embedded mode mounts in its one process: every service's Nest modules, sharing one SQLite store
// and one EmbeddedBus (config.sqlite.path) through the platform tokens.
import { ChatSyncModule, ChatSyncWorkersModule } from '@fedgate/chat-sync';
import { FederationEgressModule } from '@fedgate/federation-egress';
import { FederationIngressModule } from '@fedgate/federation-ingress';
import { sharedPlatform } from '@fedgate/platform';
import type { ServiceDefinition } from '@fedgate/service-kit';
import { StateResolverModule } from '@fedgate/state-resolver';

export const gatewayDefinition: ServiceDefinition = {
  name: 'gateway',
  // Federation HTTPS listener; service-kit adds the discovery endpoints.
  federation: [FederationIngressModule],
  // Client-server (application service) HTTP listener on loopback.
  clientServer: [ChatSyncModule],
  // Bus consumers and command handlers.
  workers: [StateResolverModule, FederationEgressModule, ChatSyncWorkersModule],
  shared: sharedPlatform,
};
