// Every federation request and its outcome goes to the audit store: origin, endpoint, status, reason.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { notesOf, type IngressRequest } from '../federation-request';

const RECORDED = Symbol('fedgate.audit-recorded');

@Injectable()
export class IngressAudit {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  /** Records the request once its response is sent, with whatever the handlers noted on the way. */
  track(request: IngressRequest, reply: FastifyReply): void {
    const marked = request as IngressRequest & { [RECORDED]?: boolean };
    if (marked[RECORDED]) return;
    marked[RECORDED] = true;
    const started = Date.now();
    reply.raw.once('finish', () => {
      const notes = notesOf(request);
      const status = reply.raw.statusCode;
      const outcome = status < 400 ? 'ok' : status >= 500 ? 'error' : 'rejected';
      const path = request.url.split('?')[0];
      void this.store.audit
        .append({
          direction: 'in',
          origin: request.federationOrigin ?? notes.origin ?? 'unknown',
          destination: this.identity.serverName,
          method: request.method,
          path,
          ts: started,
          durationMs: Date.now() - started,
          status,
          outcome,
          ...(notes.reason !== undefined ? { reason: notes.reason } : status >= 400 ? { reason: `HTTP ${status}` } : {}),
          ...(notes.txnId !== undefined ? { txnId: notes.txnId } : {}),
          ...(notes.pduCount !== undefined ? { pduCount: notes.pduCount } : {}),
          ...(notes.eduCount !== undefined ? { eduCount: notes.eduCount } : {}),
          ...(notes.details !== undefined ? { details: notes.details } : {}),
          ...notes.policy,
        })
        .catch((err: unknown) => this.logger.error({ err, path }, 'could not write the audit record of a federation request'));
    });
  }
}
