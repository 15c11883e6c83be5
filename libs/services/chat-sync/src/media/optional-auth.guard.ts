import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApplicationServiceRegistry } from '../registration';
import { resolveRequester } from '../client-server/requester';
import { CHAT_SYNC_REGISTRY } from '../tokens';

/** Lets requests without any token through; a token that is given must be an AS token (else 401). */
@Injectable()
export class OptionalAppServiceAuthGuard implements CanActivate {
  constructor(@Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const query = request.query as Record<string, unknown> | undefined;
    if (request.headers.authorization === undefined && query?.access_token === undefined) return true;
    request.requester = resolveRequester(this.registry, request);
    return true;
  }
}
