// The stateless checks every PDU received from another server goes through: shape and limits for the room
// version, the required servers' signatures with their keys, and the content hash.
import type { KeyRing, ServerKeyRequest } from '@fedgate/federation-client';
import {
  checkContentHash,
  computeEventId,
  redactEvent,
  requiredEventSigners,
  rulesOf,
  validatePdu,
  verifyEventSignatures,
  type JsonObject,
  type VerifyKeyLookup,
} from '@fedgate/protocol';

export type CheckedPdu =
  | { ok: true; eventId: string; pdu: JsonObject; redacted: boolean }
  | { ok: false; eventId?: string; errcode: string; reason: string };

/** Validates the shape and finds the keys needed: the first half, so one KeyRing call can serve a batch. */
export function keysNeededFor(pdu: Record<string, unknown>, roomVersion: string): { eventId: string; keys: ServerKeyRequest[] } {
  validatePdu(pdu, roomVersion);
  const rules = rulesOf(roomVersion);
  const eventId = computeEventId(pdu, rules);
  const signatures = (pdu.signatures ?? {}) as Record<string, Record<string, string>>;
  const ts = rules.enforceKeyValidity ? (pdu.origin_server_ts as number) : 0;
  const keys = requiredEventSigners(pdu, rules).map((serverName) => ({
    serverName,
    keyIds: Object.keys(signatures[serverName] ?? {}).filter((k) => k.startsWith('ed25519:')),
    minimumValidUntilTs: ts,
  }));
  return { eventId, keys };
}

/** Signatures then content hash; a hash mismatch keeps the event in its redacted form. */
export function verifyPduWithKeys(pdu: Record<string, unknown>, roomVersion: string, eventId: string, lookup: VerifyKeyLookup): CheckedPdu {
  try {
    verifyEventSignatures(pdu, roomVersion, lookup);
  } catch (error) {
    return { ok: false, eventId, errcode: 'M_FORBIDDEN', reason: `signature: ${(error as Error).message}` };
  }
  if (!checkContentHash(pdu, roomVersion)) return { ok: true, eventId, pdu: redactEvent(pdu, roomVersion), redacted: true };
  return { ok: true, eventId, pdu: pdu as JsonObject, redacted: false };
}

/** Both halves for a single PDU (membership endpoints). Throws nothing: failures are results. */
export async function checkPdu(pdu: unknown, roomVersion: string, keyRing: KeyRing): Promise<CheckedPdu> {
  if (pdu === null || typeof pdu !== 'object' || Array.isArray(pdu)) return { ok: false, errcode: 'M_BAD_JSON', reason: 'event is not an object' };
  let needed: { eventId: string; keys: ServerKeyRequest[] };
  try {
    needed = keysNeededFor(pdu as Record<string, unknown>, roomVersion);
  } catch (error) {
    return { ok: false, errcode: (error as { errcode?: string }).errcode ?? 'M_BAD_JSON', reason: (error as Error).message };
  }
  const lookup = await keyRing.prepare(needed.keys);
  return verifyPduWithKeys(pdu as Record<string, unknown>, roomVersion, needed.eventId, lookup);
}
