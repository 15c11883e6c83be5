// A room's current state as the space hierarchy rules of @fedgate/room-state read it (redacted events in
// their redacted form, so a cleared `m.space.child` is no link).
import { stateOf, type SummaryState, type SummaryStateEvent } from '@fedgate/room-state';
import { parseStateTupleKey } from '../ports/state';
import type { Store } from '../ports/store';
import { pduWithRedaction } from './pdu-with-redaction';

export interface SummarySource {
  roomId: string;
  roomVersion: string;
  state: SummaryState;
}

/** The room's current state, or undefined when this server has none (never joined, or only an invite). */
export async function loadSummaryState(store: Store, roomId: string): Promise<SummarySource | undefined> {
  const room = await store.rooms.get(roomId);
  if (!room?.currentStateId) return undefined;
  const stateMap = await store.state.load(room.currentStateId);
  if (!stateMap) return undefined;
  const records = await store.events.getMany([...stateMap.values()]);
  const events: SummaryStateEvent[] = [];
  for (const [tupleKey, eventId] of stateMap) {
    const record = records.get(eventId);
    if (!record || record.roomId !== roomId) continue;
    const { type, stateKey } = parseStateTupleKey(tupleKey);
    const pdu = record.redactedBy === undefined ? record.pdu : pduWithRedaction(record, room.roomVersion);
    events.push({ type, state_key: stateKey, sender: pdu.sender, origin_server_ts: pdu.origin_server_ts, content: pdu.content as Record<string, unknown> });
  }
  return { roomId, roomVersion: room.roomVersion, state: stateOf(events) };
}
