// What ingress attaches to a request on its way through the guard, the handler and the audit record.
import type { JsonObject } from '@fedgate/protocol';
import type { AuditEntry, PolicyAuditDecision } from '@fedgate/store';
import type { FastifyRequest } from 'fastify';

export interface AuditNotes {
  /** The origin the header claims (set before authentication, so refusals are recorded against it). */
  origin?: string;
  reason?: string;
  txnId?: string;
  pduCount?: number;
  eduCount?: number;
  details?: JsonObject;
  /** A policy server decision made while serving the request (docs/governance.md). */
  policy?: PolicyAuditNotes;
}

/** The policy fields of the request's audit record, its decision always set. */
export type PolicyAuditNotes = Pick<AuditEntry, 'roomId' | 'eventId' | 'sender' | 'server' | 'rule' | 'policyVersion'> & { decision: PolicyAuditDecision };

export interface IngressRequest extends FastifyRequest {
  /** The authenticated origin server, set by the X-Matrix guard. */
  federationOrigin?: string;
  auditNotes?: AuditNotes;
}

export function notesOf(request: IngressRequest): AuditNotes {
  request.auditNotes ??= {};
  return request.auditNotes;
}
