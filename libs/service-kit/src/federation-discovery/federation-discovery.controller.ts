// The two unauthenticated discovery endpoints a peer calls first.
// TODO(federation-ingress): these belong with ingress once its Nest module lives in a library.
import { Controller, Get, Inject } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG } from '../runtime.module';
import { fedgateVersion } from '../version';

@Controller()
export class FederationDiscoveryController {
  constructor(@Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig) {}

  /** Server-server API: GET /_matrix/federation/v1/version. */
  @Get('/_matrix/federation/v1/version')
  version(): { server: { name: string; version: string } } {
    return { server: { name: 'fedgate', version: fedgateVersion() } };
  }

  /** Server discovery: GET /.well-known/matrix/server, delegating to this listener's own name. */
  @Get('/.well-known/matrix/server')
  wellKnown(): { 'm.server': string } {
    return { 'm.server': this.config.serverName };
  }
}
