// Check 6 on receipt of a PDU: does the event pass auth against the room's current state?
import type { RoomVersionRules } from '@fedgate/protocol';
import { authTypesForEvent } from './auth-types';
import { authorizeEvent, createEventIdForRoom, type AuthPorts, type AuthResult } from './authorize';
import { stateMapKey, type EventLookup, type RoomEvent, type StateMap } from './event';

/**
 * Authorizes `event` against the current state (the resolved state of the forward extremities), reading only the
 * keys the auth events selection names. A rejection here means the event is soft failed, not rejected.
 */
export function checkSoftFail(event: RoomEvent, currentState: StateMap, lookup: EventLookup, rules: RoomVersionRules, ports?: AuthPorts): AuthResult {
  const wanted = new Set(authTypesForEvent(event, rules).map((r) => stateMapKey(r.type, r.state_key)));
  const createKey = stateMapKey('m.room.create', '');
  const createId = rules.roomIdFromCreateEvent && event.room_id ? createEventIdForRoom(event.room_id) : currentState.get(createKey);
  return authorizeEvent(
    event,
    {
      create: createId === undefined ? undefined : lookup(createId),
      get: (type, sk) => {
        const key = stateMapKey(type, sk);
        const id = wanted.has(key) ? currentState.get(key) : undefined;
        return id === undefined ? undefined : lookup(id);
      },
    },
    rules,
    ports,
  );
}
