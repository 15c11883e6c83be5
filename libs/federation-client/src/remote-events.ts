// The checks every event received from another server goes through before it is used: shape and limits for
// the room version, the event ID, the room, the required servers' signatures with keys valid when the event was
// sent (room versions that enforce key validity), and the content hash. One KeyRing.prepare serves a batch.
import {
  checkContentHash,
  computeEventId,
  eventIdFromSigningText,
  isEd25519KeyId,
  PduValidationError,
  redactEvent,
  redactedSigningText,
  requiredEventSigners,
  rulesOf,
  validatePdu,
  validateReceivedPdu,
  verifyEventSignatures,
  type EventTexts,
  type Pdu,
  type RoomVersionRules,
} from '@fedgate/protocol';
import type { KeyRing, ServerKeyRequest } from './key-ring';

export interface RemoteEventExpectations {
  roomVersion: RoomVersionRules | string;
  /** Refuse events of another room (a room version 12 create event carries no room_id and is not checked). */
  roomId?: string;
  /** Refuse events whose computed ID is not one of these (events fetched by ID). */
  expectedIds?: ReadonlySet<string>;
  /** Servers that must have signed besides the required ones (e.g. the invitee's, on an invite answer). */
  extraSigners?: readonly string[];
  /**
   * The server that signs the event after this check (ourselves, countersigning a restricted join on send_join):
   * its signature is not required yet. Every other required signer, the authoriser's server included, is.
   */
  countersignedBy?: string;
}

export interface AcceptedRemoteEvent {
  ok: true;
  eventId: string;
  /** The wire form (no `unsigned`; no `event_id` from room version 3 on), redacted when the content hash did not match. */
  pdu: Pdu;
  redacted: boolean;
}

export interface RefusedRemoteEvent {
  ok: false;
  /** Known once the event passed validation, or when only its numbers failed it (v6+). */
  eventId?: string;
  /** `invalid`: shape, ID or room; `signature`: a required server's signature is missing or does not verify. */
  problem: 'invalid' | 'signature';
  errcode: string;
  reason: string;
}

export type RemoteEventResult = AcceptedRemoteEvent | RefusedRemoteEvent;

/** The event as it travels between servers: without `unsigned`, and without `event_id` from room version 3 on. */
export function wireForm(pdu: Record<string, unknown>, roomVersion: RoomVersionRules | string): Pdu {
  const { unsigned: _unsigned, ...rest } = pdu;
  if (rulesOf(roomVersion).eventFormat !== 'v1') delete rest.event_id;
  return rest as Pdu;
}

interface Candidate {
  index: number;
  eventId: string;
  pdu: Pdu;
  signers: string[];
  /** The event serialised once (validation's size check) for its content hash; its signing text, the event ID's too. */
  texts: EventTexts;
  signingText: string;
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
const errcodeOf = (error: unknown) => (error as { errcode?: unknown }).errcode;

/**
 * The ID of an event refused only for its numbers (a float, an integer out of range or -0 in a v6+ room), so the
 * refusal names it (the audit record, the /send answer): well formed by the v1–5 rules, its ID is still defined
 * when redaction drops the offending values. Never used to decide anything.
 */
function idOfEventWithBadNumbers(raw: unknown, rules: RoomVersionRules, error: unknown): string | undefined {
  if (!(error instanceof PduValidationError) || error.code !== 'bad_json' || !rules.strictCanonicalJson) return undefined;
  try {
    validatePdu(raw, { ...rules, strictCanonicalJson: false });
    return computeEventId(raw, rules);
  } catch {
    return undefined;
  }
}

/** Verifies PDUs of one room version: one result per PDU, in order. Throws only when the key ring does. */
export async function verifyRemoteEvents(keyRing: KeyRing, pdus: readonly unknown[], expect: RemoteEventExpectations): Promise<RemoteEventResult[]> {
  const rules = rulesOf(expect.roomVersion);
  const results: RemoteEventResult[] = new Array(pdus.length);
  const candidates: Candidate[] = [];
  pdus.forEach((raw, index) => {
    let eventId: string | undefined;
    try {
      // Validated as received, so the size limit counts `unsigned` too.
      const texts = validateReceivedPdu(raw, rules);
      const event = raw as Pdu;
      const signingText = redactedSigningText(event, rules, texts);
      eventId = eventIdFromSigningText(event, rules, signingText);
      if (expect.expectedIds && !expect.expectedIds.has(eventId)) throw new Error(`event ${eventId} was not asked for`);
      const isV12Create = rules.roomIdFromCreateEvent && event.type === 'm.room.create' && event.state_key === '';
      if (expect.roomId !== undefined && !isV12Create && event.room_id !== expect.roomId) throw new Error(`event ${eventId} is in room ${String(event.room_id)}, not ${expect.roomId}`);
      const pdu = wireForm(event, rules);
      const signers = [...new Set([...requiredEventSigners(pdu, rules), ...(expect.extraSigners ?? [])])].filter((s) => s !== expect.countersignedBy);
      candidates.push({ index, eventId, pdu, signers, texts, signingText });
    } catch (error) {
      eventId ??= idOfEventWithBadNumbers(raw, rules, error);
      const errcode = errcodeOf(error);
      results[index] = { ok: false, eventId, problem: 'invalid', errcode: typeof errcode === 'string' ? errcode : 'M_BAD_JSON', reason: `invalid event: ${describe(error)}` };
    }
  });
  if (candidates.length === 0) return results;

  const lookup = await keyRing.prepare(keyRequests(candidates, rules));
  for (const c of candidates) {
    try {
      verifyEventSignatures(c.pdu, rules, lookup, { servers: c.signers, signingText: c.signingText });
    } catch (error) {
      results[c.index] = { ok: false, eventId: c.eventId, problem: 'signature', errcode: 'M_FORBIDDEN', reason: `bad signature: ${describe(error)}` };
      continue;
    }
    const hashOk = checkContentHash(c.pdu, rules, c.texts);
    results[c.index] = { ok: true, eventId: c.eventId, pdu: hashOk ? c.pdu : (redactEvent(c.pdu, rules) as unknown as Pdu), redacted: !hashOk };
  }
  return results;
}

/** The batch split into events to use and events refused (with reasons), each in input order. */
export function partitionRemoteEvents(results: readonly RemoteEventResult[]): { valid: AcceptedRemoteEvent[]; refused: RefusedRemoteEvent[] } {
  const valid: AcceptedRemoteEvent[] = [];
  const refused: RefusedRemoteEvent[] = [];
  for (const r of results) {
    if (r.ok) valid.push(r);
    else refused.push(r);
  }
  return { valid, refused };
}

/**
 * One request per server and key ID. Where key validity is enforced, a key must be valid at each event's
 * origin_server_ts; the latest of those covers them all. Elsewhere any key the server ever published will do.
 */
function keyRequests(candidates: readonly Candidate[], rules: RoomVersionRules): ServerKeyRequest[] {
  const validUntil = new Map<string, Map<string, number>>();
  for (const c of candidates) {
    const ts = rules.enforceKeyValidity ? (c.pdu.origin_server_ts as number) : 0;
    for (const server of c.signers) {
      const keyIds = Object.keys(c.pdu.signatures?.[server] ?? {}).filter(isEd25519KeyId);
      if (keyIds.length === 0) continue;
      const byKey = validUntil.get(server) ?? new Map<string, number>();
      for (const keyId of keyIds) byKey.set(keyId, Math.max(byKey.get(keyId) ?? 0, ts));
      validUntil.set(server, byKey);
    }
  }
  const requests: ServerKeyRequest[] = [];
  for (const [serverName, byKey] of validUntil) {
    for (const [keyId, minimumValidUntilTs] of byKey) requests.push({ serverName, keyIds: [keyId], minimumValidUntilTs });
  }
  return requests;
}
