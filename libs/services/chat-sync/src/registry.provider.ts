import type { Provider } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import { SERVER_IDENTITY, type ServerIdentity } from '@fedgate/platform';
import { FEDGATE_CONFIG } from '@fedgate/service-kit';
import { ApplicationServiceRegistry } from './registration';
import { CHAT_SYNC_REGISTRY } from './tokens';

/** The registrations listed in config (`appServices.registrationFiles`), loaded once at start. */
export const registryProvider: Provider = {
  provide: CHAT_SYNC_REGISTRY,
  inject: [FEDGATE_CONFIG, SERVER_IDENTITY],
  useFactory: (config: FedgateConfig, identity: ServerIdentity) => ApplicationServiceRegistry.fromFiles(config.appServices.registrationFiles, identity.serverName),
};
