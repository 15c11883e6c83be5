// Shape and size checks for PDUs and EDUs received over federation, before any signature or auth work.
import { CanonicalJsonError } from './canonical-json';
import { ProtocolError } from './errors';
import { eventTexts, type EventTexts } from './event-texts';
import { identifierLength, InvalidIdentifierError, parseEventId, parseRoomId, parseUserId } from './identifiers';
import { isObject, type Edu, type Pdu } from './pdu';
import { rulesOf } from './redaction';
import type { RoomVersionRules } from './room-versions';

export class PduValidationError extends ProtocolError {
  readonly errcode: 'M_BAD_JSON' | 'M_TOO_LARGE';
  constructor(
    code: string,
    /** The offending field (`event` for the whole event). */
    readonly field: string,
    detail: string,
  ) {
    super(code, `${field}: ${detail}`);
    this.errcode = code === 'too_large' ? 'M_TOO_LARGE' : 'M_BAD_JSON';
  }
}

export const MAX_PDU_BYTES = 65_536;
export const MAX_FIELD_BYTES = 255;
export const MAX_PREV_EVENTS = 20;
export const MAX_AUTH_EVENTS = 10;

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

/** `rules` given: the 255 limit of an event's own fields, in code points before v11 (see `strictByteLimits`). */
function requireString(event: Record<string, unknown>, field: string, rules?: RoomVersionRules): string {
  const value = event[field];
  if (typeof value !== 'string') throw new PduValidationError('missing_field', field, `must be a string, got ${value === undefined ? 'nothing' : typeof value}`);
  const length = identifierLength(value, rules);
  const unit = rules && !rules.strictByteLimits ? 'code points' : 'bytes';
  if (length > MAX_FIELD_BYTES) throw new PduValidationError('field_too_long', field, `is ${length} ${unit}, more than ${MAX_FIELD_BYTES}`);
  return value;
}

const LIMITED_FIELDS = ['sender', 'room_id', 'event_id', 'type', 'state_key'] as const;

/**
 * Before room version 11 an event within 255 code points but over 255 bytes in one of its limited fields passes
 * `validatePdu` (the reference server accepted such events, so rooms hold them) and must be stored rejected, so
 * the DAG through it stays whole. Returns the reason, or undefined when every field is within 255 bytes.
 */
export function byteLimitViolation(pdu: Record<string, unknown>, roomVersion: RoomVersionRules | string): string | undefined {
  if (rulesOf(roomVersion).strictByteLimits) return undefined;
  for (const field of LIMITED_FIELDS) {
    const value = pdu[field];
    if (typeof value === 'string' && utf8Length(value) > MAX_FIELD_BYTES) return `field_too_long: ${field} is ${utf8Length(value)} bytes, more than ${MAX_FIELD_BYTES}`;
  }
  return undefined;
}

function requireInteger(event: Record<string, unknown>, field: string): number {
  const value = event[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new PduValidationError('bad_field', field, `must be a non-negative integer, got ${JSON.stringify(value)}`);
  return value;
}

function identifier<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof InvalidIdentifierError) throw new PduValidationError('bad_identifier', field, e.message);
    throw e;
  }
}

/**
 * Validates a received PDU for a room version: size limit on canonical JSON (signatures included),
 * per-field byte limits, required fields and their types, identifier grammar (historical user IDs allowed),
 * prev_events/auth_events counts and format. Throws PduValidationError naming the field.
 */
export function validatePdu(value: unknown, roomVersion: RoomVersionRules | string): asserts value is Pdu {
  validateReceivedPdu(value, roomVersion);
}

/**
 * validatePdu, returning the event's members serialised for the size limit, for the checks that hash and verify
 * it next (see eventTexts): one canonical serialisation of the PDU for all of them.
 */
export function validateReceivedPdu(value: unknown, roomVersion: RoomVersionRules | string): EventTexts {
  const rules = rulesOf(roomVersion);
  if (!isObject(value)) throw new PduValidationError('not_an_object', 'event', 'a PDU must be a JSON object');
  let texts: EventTexts;
  try {
    texts = eventTexts(value, rules);
  } catch (e) {
    if (e instanceof CanonicalJsonError) throw new PduValidationError('bad_json', e.path.replace(/^\$\.?/, '') || 'event', e.message);
    throw e;
  }
  const size = texts.size;
  if (size > MAX_PDU_BYTES) throw new PduValidationError('too_large', 'event', `is ${size} bytes of canonical JSON, more than ${MAX_PDU_BYTES}`);

  const type = requireString(value, 'type', rules);
  const sender = requireString(value, 'sender', rules);
  identifier('sender', () => parseUserId(sender, { allowHistorical: true, rules }));

  const isCreate = type === 'm.room.create' && value.state_key === '';
  if (rules.roomIdFromCreateEvent && isCreate) {
    if (value.room_id !== undefined) throw new PduValidationError('bad_field', 'room_id', `room version ${rules.id} create events have no room_id`);
  } else {
    const roomId = requireString(value, 'room_id', rules);
    identifier('room_id', () => parseRoomId(roomId, rules));
  }

  if (value.state_key !== undefined) requireString(value, 'state_key', rules);
  requireInteger(value, 'origin_server_ts');
  requireInteger(value, 'depth');
  if (!isObject(value.content)) throw new PduValidationError('missing_field', 'content', 'must be an object');
  if (!isObject(value.hashes) || typeof value.hashes.sha256 !== 'string') throw new PduValidationError('missing_field', 'hashes', 'must be an object with a sha256 string');
  if (!isObject(value.signatures)) throw new PduValidationError('missing_field', 'signatures', 'must be an object');
  if (value.origin !== undefined && typeof value.origin !== 'string') throw new PduValidationError('bad_field', 'origin', 'must be a string');

  if (rules.eventFormat === 'v1') {
    const eventId = requireString(value, 'event_id', rules);
    identifier('event_id', () => parseEventId(eventId, rules));
  } else if (value.event_id !== undefined) {
    // Not part of the wire format from v3 on; tolerated (and ignored by hashing) but held to the size limit.
    requireString(value, 'event_id', rules);
  }
  checkReferences(value, 'prev_events', MAX_PREV_EVENTS, rules);
  checkReferences(value, 'auth_events', MAX_AUTH_EVENTS, rules);
  if (type === 'm.room.redaction' && !rules.redactsInContent && value.redacts === undefined) {
    throw new PduValidationError('missing_field', 'redacts', `room version ${rules.id} m.room.redaction events must name the redacted event in redacts`);
  }
  if (value.redacts !== undefined) {
    const redacts = requireString(value, 'redacts');
    identifier('redacts', () => parseEventId(redacts, rules));
  }
  return texts;
}

function checkReferences(event: Record<string, unknown>, field: string, max: number, rules: RoomVersionRules): void {
  const refs = event[field];
  if (!Array.isArray(refs)) throw new PduValidationError('missing_field', field, 'must be an array');
  if (refs.length > max) throw new PduValidationError('too_many_references', field, `holds ${refs.length} events, more than ${max}`);
  refs.forEach((ref, i) => {
    const where = `${field}[${i}]`;
    let id: unknown = ref;
    if (rules.eventFormat === 'v1') {
      if (!Array.isArray(ref) || ref.length !== 2 || !isObject(ref[1])) throw new PduValidationError('bad_reference', where, 'must be [event_id, {sha256: hash}]');
      id = ref[0];
    }
    if (typeof id !== 'string') throw new PduValidationError('bad_reference', where, 'event ID must be a string');
    identifier(where, () => parseEventId(id as string, rules));
  });
}

/** Checks an EDU's envelope: `edu_type` a string within 255 bytes, `content` an object. */
export function validateEdu(value: unknown): asserts value is Edu {
  if (!isObject(value)) throw new PduValidationError('not_an_object', 'edu', 'an EDU must be a JSON object');
  requireString(value, 'edu_type');
  if (!isObject(value.content)) throw new PduValidationError('missing_field', 'content', 'must be an object');
}
