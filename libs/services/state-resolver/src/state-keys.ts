// The store keys state tuples as JSON `[type, state_key]`; room-state and the room log use `type\0state_key`.
import { parseStateTupleKey, stateTupleKey, type StateMap as StoreStateMap } from '@fedgate/store';
import { splitStateMapKey, stateMapKey, type StateMap as RoomStateMap } from '@fedgate/room-state';

export function toRoomStateMap(state: StoreStateMap): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, id] of state) {
    const { type, stateKey } = parseStateTupleKey(key);
    out.set(stateMapKey(type, stateKey), id);
  }
  return out;
}

export function toStoreStateMap(state: RoomStateMap): StoreStateMap {
  const out: StoreStateMap = new Map();
  for (const [key, id] of state) {
    const { type, state_key } = splitStateMapKey(key);
    out.set(stateTupleKey(type, state_key), id);
  }
  return out;
}

/** What changed from `before` to `after`, keyed `type\0state_key` (null: removed), as RoomLogEntry carries it. */
export function stateDelta(before: RoomStateMap, after: RoomStateMap): Record<string, string | null> {
  const delta: Record<string, string | null> = {};
  for (const [key, id] of after) if (before.get(key) !== id) delta[key] = id;
  for (const key of before.keys()) if (!after.has(key)) delta[key] = null;
  return delta;
}
