import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG, MatrixError } from '@fedgate/service-kit';
import { ApplicationServiceRegistry } from '../registration';
import { resolveRequester } from '../client-server/requester';
import { CHAT_SYNC_REGISTRY } from '../tokens';

/**
 * The legacy media reads: a token that is given must be an AS token (else 401). Requests without any
 * token pass only when `clientServer.unauthenticatedLegacyMedia` is set; by default they get 401
 * M_MISSING_TOKEN, as every other client-server call does.
 */
@Injectable()
export class OptionalAppServiceAuthGuard implements CanActivate {
  constructor(
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    @Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const query = request.query as Record<string, unknown> | undefined;
    if (request.headers.authorization === undefined && query?.access_token === undefined) {
      if (this.config.clientServer.unauthenticatedLegacyMedia === true) return true;
      throw new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token (unauthenticated media downloads are off on this server)');
    }
    request.requester = resolveRequester(this.registry, request);
    return true;
  }
}
