// Content hashes, reference hashes, event IDs and event signatures (server-server API "Signing Events").
import { hash } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64, encodeUrlSafeUnpaddedBase64 } from './base64';
import { canonicalJson } from './canonical-json';
import { ProtocolError } from './errors';
import { canonicalTextOf, type EventTexts } from './event-texts';
import { addSignature, verifyJsonSignature, type VerifyKeyLookup } from './json-signing';
import type { Signatures } from './pdu';
import { redactForSigning, rulesOf } from './redaction';
import type { RoomVersionRules } from './room-versions';
import type { SigningKey } from './signing-key';

export class EventFormatError extends ProtocolError {
  readonly errcode = 'M_BAD_JSON';
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super('invalid_event', `${field}: ${detail}`);
  }
}

type EventObject = Record<string, unknown>;

// One-shot: a Hash object per digest showed in the inbound profile (issue 19).
function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}

/**
 * From room version 3 on `event_id` is not part of the event (it is derived from it). A copy carrying it —
 * as stored events often do — would hash and sign differently from the wire form, so it is dropped here.
 */
function wireForm(event: EventObject, rules: RoomVersionRules): EventObject {
  if (rules.eventFormat === 'v1' || !Object.hasOwn(event, 'event_id')) return event;
  const { event_id: _id, ...rest } = event;
  return rest;
}

const NOT_IN_CONTENT_HASH_V1 = new Set(['unsigned', 'signatures', 'hashes']);
const NOT_IN_CONTENT_HASH = new Set(['unsigned', 'signatures', 'hashes', 'event_id']);
const NOTHING = new Set<string>();

/**
 * SHA-256 of the canonical event without `unsigned`, `signatures` and `hashes`, as raw bytes. `texts`: the
 * event's members serialised once already (see eventTexts).
 */
export function computeContentHashBytes(event: EventObject, roomVersion: RoomVersionRules | string, texts?: EventTexts): Buffer {
  const rules = rulesOf(roomVersion);
  if (texts) return sha256(canonicalTextOf(event, rules.eventFormat === 'v1' ? NOT_IN_CONTENT_HASH_V1 : NOT_IN_CONTENT_HASH, rules, texts));
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = wireForm(event, rules);
  return sha256(canonicalJson(rest, { strict: rules.strictCanonicalJson }));
}

/** The content hash as unpadded base64, the form stored in `hashes.sha256`. */
export function computeContentHash(event: EventObject, roomVersion: RoomVersionRules | string): string {
  return encodeUnpaddedBase64(computeContentHashBytes(event, roomVersion));
}

/** Canonical JSON of the redacted event without `signatures` and `unsigned`: what signatures and the reference hash cover. */
export function redactedSigningText(event: EventObject, roomVersion: RoomVersionRules | string, texts?: EventTexts): string {
  const rules = rulesOf(roomVersion);
  if (texts) return canonicalTextOf(redactForSigning(event, rules), NOTHING, rules, texts);
  return canonicalJson(redactForSigning(event, rules), { strict: rules.strictCanonicalJson });
}

export function computeReferenceHashBytes(event: EventObject, roomVersion: RoomVersionRules | string): Buffer {
  return sha256(redactedSigningText(event, roomVersion));
}

/** The event ID from the event's signing text (redactedSigningText): the reference hash and the signatures cover the same bytes. */
export function eventIdFromSigningText(event: EventObject, roomVersion: RoomVersionRules | string, signingText: string): string {
  const rules = rulesOf(roomVersion);
  if (rules.eventIdFormat === 'server-generated') return computeEventId(event, rules);
  const referenceHash = sha256(signingText);
  return '$' + (rules.eventIdFormat === 'base64' ? encodeUnpaddedBase64(referenceHash) : encodeUrlSafeUnpaddedBase64(referenceHash));
}

/** The reference hash as unpadded standard base64 (the form in v1–2 `[event_id, {sha256}]` references). */
export function computeReferenceHash(event: EventObject, roomVersion: RoomVersionRules | string): string {
  return encodeUnpaddedBase64(computeReferenceHashBytes(event, roomVersion));
}

/**
 * The event's ID. Versions 1–2: the server-generated `event_id` carried in the event. Version 3: `$` and
 * the reference hash in standard base64; 4+: in URL-safe base64.
 */
export function computeEventId(event: EventObject, roomVersion: RoomVersionRules | string): string {
  const rules = rulesOf(roomVersion);
  switch (rules.eventIdFormat) {
    case 'server-generated': {
      const id = event.event_id;
      if (typeof id !== 'string' || !id.startsWith('$')) throw new EventFormatError('event_id', `room version ${rules.id} events carry their event_id; got ${JSON.stringify(id)}`);
      return id;
    }
    case 'base64':
      return '$' + encodeUnpaddedBase64(computeReferenceHashBytes(event, rules));
    case 'url-safe-base64':
      return '$' + encodeUrlSafeUnpaddedBase64(computeReferenceHashBytes(event, rules));
  }
}

/** Room version 12: the room ID is the create event's reference hash with a `!` sigil. */
export function computeRoomIdFromCreateEvent(createEvent: EventObject, roomVersion: RoomVersionRules | string): string {
  const rules = rulesOf(roomVersion);
  if (!rules.roomIdFromCreateEvent) throw new EventFormatError('room_id', `room version ${rules.id} room IDs are not derived from the create event`);
  return '!' + encodeUrlSafeUnpaddedBase64(computeReferenceHashBytes(createEvent, rules));
}

const SERVER_EVENT_ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A fresh `$opaque:server` ID for room versions 1–2, from the caller's random bytes. */
export function generateServerEventId(serverName: string, randomBytes: Uint8Array): string {
  let local = '';
  for (const b of randomBytes) local += SERVER_EVENT_ID_CHARS[b % SERVER_EVENT_ID_CHARS.length];
  return `$${local}:${serverName}`;
}

/**
 * Adds the content hash and this server's signature of the redacted event (keeping other signatures and
 * `unsigned`). Returns a new event.
 */
export function signEvent<T extends EventObject>(event: T, roomVersion: RoomVersionRules | string, serverName: string, key: SigningKey): T & { hashes: { sha256: string }; signatures: Signatures } {
  const rules = rulesOf(roomVersion);
  const hashed = { ...event, hashes: { sha256: computeContentHash(event, rules) } };
  const signature = encodeUnpaddedBase64(key.sign(Buffer.from(redactedSigningText(hashed, rules), 'utf8')));
  return { ...hashed, signatures: addSignature(event.signatures as Signatures | undefined, serverName, key.keyId, signature) };
}

/** True when `hashes.sha256` matches the event; false means treat the event as redacted. `texts`: see computeContentHashBytes. */
export function checkContentHash(event: EventObject, roomVersion: RoomVersionRules | string, texts?: EventTexts): boolean {
  const hashes = event.hashes as Record<string, unknown> | undefined;
  const claimed = hashes && typeof hashes === 'object' ? hashes.sha256 : undefined;
  if (typeof claimed !== 'string') return false;
  let claimedBytes: Buffer;
  try {
    claimedBytes = decodeBase64(claimed);
  } catch {
    return false;
  }
  return claimedBytes.equals(computeContentHashBytes(event, roomVersion, texts));
}

function serverOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon < 0 ? undefined : id.slice(colon + 1);
}

/**
 * The servers whose signatures an event needs: the sender's, in room versions 1–2 also the event ID's
 * server, and from room version 8 on the server of a join's `join_authorised_via_users_server`. (Third-party-invite membership events may be sent by another server; pass `servers` explicitly then.)
 */
export function requiredEventSigners(event: EventObject, roomVersion: RoomVersionRules | string): string[] {
  const rules = rulesOf(roomVersion);
  const sender = serverOf(event.sender);
  if (!sender) throw new EventFormatError('sender', `cannot find a server in sender ${JSON.stringify(event.sender)}`);
  const servers = [sender];
  if (rules.eventFormat === 'v1') {
    const idServer = serverOf(event.event_id);
    if (idServer && idServer !== sender) servers.push(idServer);
  }
  // Restricted joins (v8+): the server of the member who vouched for the join must have signed it.
  const content = event.content as Record<string, unknown> | undefined;
  const via = content?.join_authorised_via_users_server;
  if (rules.restrictedJoin && event.type === 'm.room.member' && content?.membership === 'join' && via !== undefined) {
    const authoriser = serverOf(via);
    if (!authoriser) throw new EventFormatError('content.join_authorised_via_users_server', `cannot find a server in ${JSON.stringify(via)}`);
    if (!servers.includes(authoriser)) servers.push(authoriser);
  }
  return servers;
}

export interface VerifyEventOptions {
  /** Override the servers that must have signed (default: requiredEventSigners). */
  servers?: readonly string[];
  /** The event's redactedSigningText, if the caller has it already (it computed the event ID from it). */
  signingText?: string;
}

/**
 * Verifies the required servers' signatures on the redacted event. In room versions 5+ keys must be valid at
 * the event's origin_server_ts. Throws SignatureVerificationError (or EventFormatError); returns the verified
 * key IDs per server. Does not check the content hash: call checkContentHash after.
 */
export function verifyEventSignatures(event: EventObject, roomVersion: RoomVersionRules | string, lookup: VerifyKeyLookup, options?: VerifyEventOptions): Map<string, string[]> {
  const rules = rulesOf(roomVersion);
  const servers = options?.servers ?? requiredEventSigners(event, rules);
  const ts = event.origin_server_ts;
  if (rules.enforceKeyValidity && typeof ts !== 'number') throw new EventFormatError('origin_server_ts', `must be a number to check key validity, got ${JSON.stringify(ts)}`);
  // The signed bytes are computed once for all servers; only `signatures` is read from the object itself.
  const signaturesOnly = { signatures: event.signatures };
  const signedBytes = Buffer.from(options?.signingText ?? redactedSigningText(event, rules), 'utf8');
  const validAtTs = rules.enforceKeyValidity ? (ts as number) : undefined;
  const result = new Map<string, string[]>();
  for (const server of servers) result.set(server, verifyJsonSignature(signaturesOnly, server, lookup, { signedBytes, validAtTs }));
  return result;
}
