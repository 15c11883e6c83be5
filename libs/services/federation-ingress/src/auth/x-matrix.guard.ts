// Authenticates every /_matrix/federation/* request with X-Matrix (except /version, served elsewhere), and
// applies the room's server ACL to the origin on room-scoped endpoints.
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { KEY_RING, SERVER_IDENTITY, type KeyRing, type ServerIdentity } from '@fedgate/platform';
import { parseXMatrixHeader, verifyXMatrixRequest, XMatrixAuthError } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import type { FastifyReply } from 'fastify';
import { IngressAudit } from '../audit/ingress-audit';
import { notesOf, type IngressRequest } from '../federation-request';
import { RoomAccess } from './room-access';
import { ServerUpSignal } from './server-up-signal';

@Injectable()
export class XMatrixGuard implements CanActivate {
  constructor(
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly audit: IngressAudit,
    private readonly serverUp: ServerUpSignal,
    private readonly access: RoomAccess,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<IngressRequest>();
    this.audit.track(request, http.getResponse<FastifyReply>());
    const notes = notesOf(request);
    const authorization = request.headers.authorization;
    try {
      if (!authorization) throw new XMatrixAuthError('missing_header', 'request has no Authorization header');
      const credentials = parseXMatrixHeader(authorization);
      notes.origin = credentials.origin;
      if (credentials.destination !== undefined && credentials.destination !== this.identity.serverName) {
        throw new XMatrixAuthError('wrong_destination', `request is for ${credentials.destination}, not ${this.identity.serverName}`);
      }
      // The client address budgets the key fetches a forged origin can cause (issue 11 defect 5).
      const lookup = await this.keyRing.prepare([{ serverName: credentials.origin, keyIds: [credentials.key] }], { clientAddress: request.ip });
      const content = request.body === undefined || Buffer.isBuffer(request.body) ? undefined : request.body;
      const { origin } = verifyXMatrixRequest(
        { method: request.method, uri: request.url, content, authorization },
        lookup,
        { serverName: this.identity.serverName, nowTs: Date.now() },
      );
      request.federationOrigin = origin;
    } catch (error) {
      if (error instanceof XMatrixAuthError) {
        notes.reason = error.code;
        throw MatrixError.unauthorized(error.message);
      }
      throw error;
    }
    this.serverUp.seen(request.federationOrigin);
    const roomId = (request.params as Record<string, string | undefined>).roomId;
    if (roomId !== undefined && !(await this.access.aclAllows(roomId, request.federationOrigin))) {
      notes.reason = 'server_acl';
      throw MatrixError.forbidden(`Server ${request.federationOrigin} is denied by the room's server ACL`);
    }
    return true;
  }
}
