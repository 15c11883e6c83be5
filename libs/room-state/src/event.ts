// The event shape room-state works on: a PDU with references flattened to event IDs.
import { isObject, type JsonObject, type Pdu } from '@fedgate/protocol';

export interface RoomEvent {
  readonly event_id: string;
  /** Absent only on a room version 12 create event. */
  readonly room_id?: string;
  readonly sender: string;
  readonly type: string;
  readonly state_key?: string;
  readonly content: JsonObject;
  readonly prev_events: readonly string[];
  readonly auth_events: readonly string[];
  readonly origin_server_ts: number;
  readonly depth?: number;
  readonly redacts?: string;
  readonly signatures?: Record<string, Record<string, string>>;
}

/** Event lookup port: state resolution and authorization never fetch, they ask. */
export type EventLookup = (eventId: string) => RoomEvent | undefined;

/** A room state: `stateMapKey(type, state_key)` → event ID. */
export type StateMap = ReadonlyMap<string, string>;

const SEPARATOR = '\u0000';

export function stateMapKey(type: string, stateKey: string): string {
  return type + SEPARATOR + stateKey;
}

export function splitStateMapKey(key: string): { type: string; state_key: string } {
  const i = key.indexOf(SEPARATOR);
  return { type: key.slice(0, i), state_key: key.slice(i + 1) };
}

export function isStateEvent(event: RoomEvent): boolean {
  return typeof event.state_key === 'string';
}

/** Room version 1–2 references are `[id, {sha256}]`; later versions use bare IDs. */
export function referenceId(ref: unknown): string | undefined {
  if (typeof ref === 'string') return ref;
  if (Array.isArray(ref) && typeof ref[0] === 'string') return ref[0];
  return undefined;
}

export class InvalidEventError extends Error {
  constructor(readonly eventId: string | undefined, message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

function referenceList(value: unknown, field: string, eventId: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidEventError(eventId, `${eventId}: ${field} is not an array`);
  return value.map((ref) => {
    const id = referenceId(ref);
    if (id === undefined) throw new InvalidEventError(eventId, `${eventId}: ${field} holds an entry that is neither an ID nor an [id, hashes] pair`);
    return id;
  });
}

/**
 * Accepts a PDU as any server exports it, or one written by hand: `depth`, `hashes` and `signatures` may be
 * missing, references may be IDs or v1 `[id, hashes]` pairs.
 */
export function toRoomEvent(raw: Partial<Pdu> | Record<string, unknown>, eventId?: string): RoomEvent {
  const pdu = raw as Record<string, unknown>;
  const id = eventId ?? pdu.event_id;
  if (typeof id !== 'string' || id === '') throw new InvalidEventError(undefined, 'event has no event_id');
  if (typeof pdu.type !== 'string') throw new InvalidEventError(id, `${id}: type is not a string`);
  if (typeof pdu.sender !== 'string') throw new InvalidEventError(id, `${id}: sender is not a string`);
  if (pdu.state_key !== undefined && typeof pdu.state_key !== 'string') throw new InvalidEventError(id, `${id}: state_key is not a string`);
  const content = pdu.content ?? {};
  if (typeof content !== 'object' || content === null || Array.isArray(content)) throw new InvalidEventError(id, `${id}: content is not an object`);
  const event: RoomEvent = {
    event_id: id,
    room_id: typeof pdu.room_id === 'string' ? pdu.room_id : undefined,
    sender: pdu.sender,
    type: pdu.type,
    state_key: pdu.state_key as string | undefined,
    content: content as JsonObject,
    prev_events: referenceList(pdu.prev_events, 'prev_events', id),
    auth_events: referenceList(pdu.auth_events, 'auth_events', id),
    origin_server_ts: typeof pdu.origin_server_ts === 'number' ? pdu.origin_server_ts : 0,
    depth: typeof pdu.depth === 'number' ? pdu.depth : undefined,
    redacts: typeof pdu.redacts === 'string' ? pdu.redacts : undefined,
    signatures: isObject(pdu.signatures) ? (pdu.signatures as Record<string, Record<string, string>>) : undefined,
  };
  return event;
}

export { isObject };

/** The server name part of a user ID, room ID or v1–2 event ID (`@user:server`). */
export function domainOf(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? '' : id.slice(i + 1);
}
