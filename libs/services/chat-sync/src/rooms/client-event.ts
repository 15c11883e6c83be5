// Events as the client-server API and application services see them ("ClientEvent"): no hashes,
// signatures, prev/auth events or depth; event_id and room_id always present.
import type { Pdu } from '@fedgate/protocol';

export type ClientEvent = Record<string, unknown> & {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  state_key?: string;
  unsigned?: Record<string, unknown>;
};

export function toClientEvent(pdu: Pdu | Record<string, unknown>, eventId: string, roomId: string, now = Date.now()): ClientEvent {
  const event = pdu as Pdu;
  const client: ClientEvent = {
    type: event.type,
    event_id: eventId,
    room_id: roomId,
    sender: event.sender,
    origin_server_ts: event.origin_server_ts,
    content: (event.content ?? {}) as Record<string, unknown>,
  };
  if (event.state_key !== undefined) client.state_key = event.state_key;
  // v1–v10 carry `redacts` at the top level; clients read it there too.
  if (typeof event.redacts === 'string') client.redacts = event.redacts;
  const unsigned: Record<string, unknown> = { ...((event.unsigned as Record<string, unknown> | undefined) ?? {}) };
  if (typeof event.origin_server_ts === 'number') unsigned.age = Math.max(0, now - event.origin_server_ts);
  client.unsigned = unsigned;
  return client;
}

/** The stripped state (`invite_room_state`) a prospective member sees: type, state_key, content, sender. */
export function strippedState(event: { type: string; state_key?: string; content: unknown; sender: string }): Record<string, unknown> {
  return { type: event.type, state_key: event.state_key ?? '', content: event.content, sender: event.sender };
}
