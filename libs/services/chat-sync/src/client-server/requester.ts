// Who is calling: an application service (by its as_token) acting as its sender or a namespaced user.
import { createParamDecorator, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { parseUserId } from '@fedgate/protocol';
import type { ApplicationService } from '../registration';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';

export interface Requester {
  service: ApplicationService;
  /** The user the request acts as: `user_id=` when given, else the AS's sender. */
  userId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    requester?: Requester;
  }
}

function accessToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new MatrixError(401, 'M_MISSING_TOKEN', 'Authorization header is not a Bearer token');
    return match[1];
  }
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = query?.access_token;
  return typeof fromQuery === 'string' ? fromQuery : undefined;
}

/**
 * Authenticates every client-server request by as_token and resolves the asserted user: a user
 * outside the AS's namespaces is refused as a homeserver refuses it (403 M_EXCLUSIVE when another AS
 * owns it, M_FORBIDDEN otherwise). Another AS's exclusive claim wins over this one's non-exclusive
 * namespace, and a user registered by another AS stays that AS's.
 */
@Injectable()
export class AppServiceAuthGuard implements CanActivate {
  constructor(
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    @Inject(STORE) private readonly store: Store,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const requester = resolveRequester(this.registry, request);
    if (requester.userId !== requester.service.senderUserId) {
      const profile = await this.store.profiles.get(requester.userId);
      if (profile?.appServiceId && profile.appServiceId !== requester.service.id) {
        throw new MatrixError(403, 'M_EXCLUSIVE', `${requester.userId} was registered by another application service`);
      }
    }
    // A deactivated user stays deactivated: nothing more is done as them (the AS's sender is never one).
    if (requester.userId !== requester.service.senderUserId && (await this.store.chatLifecycle.getDeactivated(requester.userId))) {
      throw new MatrixError(403, 'M_USER_DEACTIVATED', `${requester.userId} has been deactivated`);
    }
    request.requester = requester;
    return true;
  }
}

export function resolveRequester(registry: ApplicationServiceRegistry, request: FastifyRequest): Requester {
  const token = accessToken(request);
  if (token === undefined) throw new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
  const service = registry.findByAsToken(token);
  if (!service) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unrecognised access token', { soft_logout: false });
  const query = request.query as Record<string, unknown> | undefined;
  const asserted = query?.user_id;
  if (asserted === undefined) return { service, userId: service.senderUserId };
  if (typeof asserted !== 'string') throw MatrixError.invalidParam('user_id must be a single user ID');
  try {
    parseUserId(asserted);
  } catch {
    throw MatrixError.invalidParam(`user_id ${JSON.stringify(asserted)} is not a valid user ID`);
  }
  const refusal = registry.actingRefusal(service, asserted);
  if (refusal === 'exclusive') throw new MatrixError(403, 'M_EXCLUSIVE', `${asserted} is in another application service's exclusive namespace`);
  if (refusal) throw MatrixError.forbidden(`Application service cannot masquerade as ${asserted}`);
  return { service, userId: asserted };
}

export const CurrentRequester = createParamDecorator((_data: unknown, context: ExecutionContext): Requester => {
  const requester = context.switchToHttp().getRequest<FastifyRequest>().requester;
  if (!requester) throw MatrixError.unknown('request reached a handler without authentication');
  return requester;
});
