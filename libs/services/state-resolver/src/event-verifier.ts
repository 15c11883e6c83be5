// Checks events fetched from other servers before they are used: shape, ID, signatures, content hash.
import type { KeyRing, ServerKeyRequest } from '@fedgate/federation-client';
import type { Store } from '@fedgate/store';
import {
  checkContentHash,
  computeEventId,
  redactEvent,
  requiredEventSigners,
  rulesOf,
  validatePdu,
  verifyEventSignatures,
  type Pdu,
} from '@fedgate/protocol';

export interface VerifiedEvent {
  eventId: string;
  /** The PDU, redacted when its content hash did not match. */
  pdu: Pdu;
  redacted: boolean;
}

export interface RefusedEvent {
  eventId?: string;
  reason: string;
}

export interface VerificationResult {
  valid: VerifiedEvent[];
  refused: RefusedEvent[];
}

export function wireForm(pdu: Record<string, unknown>, roomVersion: string): Pdu {
  const rules = rulesOf(roomVersion);
  const { unsigned: _u, ...rest } = pdu;
  if (rules.eventFormat !== 'v1') delete rest.event_id;
  return rest as Pdu;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class EventVerifier {
  constructor(private readonly keyRing: KeyRing) {}

  /**
   * Verifies PDUs of one room. Events whose computed ID is not among `expectedIds` (when given), that belong to
   * another room, fail validation or lack a valid signature are refused with a reason; a bad content hash keeps
   * the event in redacted form.
   */
  async verify(
    pdus: readonly Record<string, unknown>[],
    roomVersion: string,
    roomId: string,
    expectedIds?: ReadonlySet<string>,
    /** Servers that must have signed besides the required ones (e.g. the invitee's, on an invite v2 answer). */
    extraSigners: readonly string[] = [],
  ): Promise<VerificationResult> {
    const rules = rulesOf(roomVersion);
    const result: VerificationResult = { valid: [], refused: [] };
    const candidates: Array<{ eventId: string; pdu: Pdu; signers: string[] }> = [];
    for (const raw of pdus) {
      let eventId: string | undefined;
      try {
        const pdu = wireForm(raw, roomVersion);
        validatePdu(pdu, rules);
        eventId = computeEventId(pdu, rules);
        if (expectedIds && !expectedIds.has(eventId)) throw new Error(`event ${eventId} was not asked for`);
        const isV12Create = rules.roomIdFromCreateEvent && pdu.type === 'm.room.create' && pdu.state_key === '';
        if (!isV12Create && pdu.room_id !== roomId) throw new Error(`event ${eventId} is in room ${String(pdu.room_id)}, not ${roomId}`);
        candidates.push({ eventId, pdu, signers: [...new Set([...requiredEventSigners(pdu, rules), ...extraSigners])] });
      } catch (err) {
        result.refused.push({ eventId, reason: `invalid event: ${describe(err)}` });
      }
    }
    if (candidates.length === 0) return result;

    const requests = new Map<string, ServerKeyRequest>();
    for (const c of candidates) {
      for (const server of c.signers) {
        const keyIds = Object.keys((c.pdu.signatures ?? {})[server] ?? {});
        const request = requests.get(server) ?? { serverName: server, keyIds: [] };
        for (const k of keyIds) if (!request.keyIds!.includes(k)) request.keyIds!.push(k);
        requests.set(server, request);
      }
    }
    const lookup = await this.keyRing.prepare([...requests.values()]);
    for (const c of candidates) {
      try {
        verifyEventSignatures(c.pdu, rules, lookup, { servers: c.signers });
      } catch (err) {
        result.refused.push({ eventId: c.eventId, reason: `bad signature: ${describe(err)}` });
        continue;
      }
      const hashOk = checkContentHash(c.pdu, rules);
      result.valid.push({ eventId: c.eventId, pdu: hashOk ? c.pdu : (redactEvent(c.pdu, rules) as unknown as Pdu), redacted: !hashOk });
    }
    return result;
  }
}

/** Fetched events that failed verification are not used; the audit store keeps which and why. */
export async function auditRefused(store: Store, serverName: string, remote: string, method: string, path: string, refused: readonly RefusedEvent[]): Promise<void> {
  if (refused.length === 0) return;
  await store.audit.append({
    direction: 'out',
    origin: serverName,
    destination: remote,
    method,
    path,
    ts: Date.now(),
    durationMs: 0,
    status: 200,
    outcome: 'rejected',
    reason: 'fetched_event_refused',
    details: { refused: refused.map((r) => ({ eventId: r.eventId ?? null, reason: r.reason })) },
  });
}
