// An audit record of every federation request in and out, for operators: who, when, what, outcome, why.
import type { JsonObject } from '@fedgate/protocol';

export type AuditDirection = 'in' | 'out';
/** ok: served/delivered; rejected: refused for a reason (auth, limits, backoff); error: failed (network, 5xx, bug). */
export type AuditOutcome = 'ok' | 'rejected' | 'error';

export interface AuditEntry {
  direction: AuditDirection;
  /** The requesting server (for `in`: the remote; for `out`: this server). */
  origin: string;
  /** The receiving server (for `in`: this server; for `out`: the remote). */
  destination: string;
  method: string;
  path: string;
  ts: number;
  durationMs: number;
  /** HTTP status, or 0 when no response arrived. */
  status: number;
  outcome: AuditOutcome;
  /** A short machine-readable reason (e.g. an errcode or 'bad_signature'), queryable. */
  reason?: string;
  txnId?: string;
  pduCount?: number;
  eduCount?: number;
  /** Anything else worth keeping: per-PDU results, error text. */
  details?: JsonObject;
  /** Policy decisions (docs/governance.md): what was decided about which event, by which rule of which policy version. */
  decision?: PolicyAuditDecision;
  roomId?: string;
  eventId?: string;
  sender?: string;
  /** The server the decision is about (the sender's); `origin` is the server that asked. */
  server?: string;
  rule?: string;
  policyVersion?: string;
}

/** signed / refused: this server as a room's policy server; soft_failed: an event soft-failed for want of a policy signature; policy_reload: the policy file changed (or a new one was refused). */
export type PolicyAuditDecision = 'signed' | 'refused' | 'soft_failed' | 'policy_reload';

export interface AuditRecord extends AuditEntry {
  /** Assigned by the store; increases with insertion order. */
  id: string;
}

export interface AuditQuery {
  direction?: AuditDirection;
  origin?: string;
  destination?: string;
  outcome?: AuditOutcome;
  reason?: string;
  decision?: PolicyAuditDecision;
  roomId?: string;
  server?: string;
  rule?: string;
  /** Inclusive lower and exclusive upper bound on `ts`. */
  sinceTs?: number;
  untilTs?: number;
  /** Default 100. */
  limit?: number;
}

export interface AuditRepository {
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Matching records, newest first. */
  query(query: AuditQuery): Promise<AuditRecord[]>;
  /** Deletes records older than `ts`; returns how many. */
  pruneBefore(ts: number): Promise<number>;
}
