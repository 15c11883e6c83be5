// Is a room using a policy server? (server-server API "Determining if a Policy Server is enabled in a room".)
// All of: a valid `m.room.policy` state event with an empty state key in the room's current state (`via` a
// string, `public_keys` an object with a string `ed25519`), and at least one user of `via` joined in current state.
import { POLICY_EVENT_TYPE } from '@fedgate/protocol';
import { domainOf, isObject, stateMapKey, type EventLookup, type RoomEvent, type StateMap } from '../event';

export type RoomPolicyServer =
  | { enabled: true; via: string; publicKey: string; policyEventId: string }
  | { enabled: false; reason: 'no_policy_event' | 'invalid_policy_event' | 'policy_server_not_joined'; detail: string };

export const POLICY_STATE_KEY = stateMapKey(POLICY_EVENT_TYPE, '');

/**
 * From the current `m.room.policy` event (undefined when the state has none) and the servers with a joined user
 * in current state. Only the fields the spec names are looked at; anything else in the content is ignored.
 */
export function policyServerOf(policyEvent: RoomEvent | undefined, joinedServers: Iterable<string>): RoomPolicyServer {
  if (!policyEvent || policyEvent.type !== POLICY_EVENT_TYPE || policyEvent.state_key !== '') {
    return { enabled: false, reason: 'no_policy_event', detail: `no ${POLICY_EVENT_TYPE} state event with an empty state key` };
  }
  const { via, public_keys: keys } = policyEvent.content as Record<string, unknown>;
  if (typeof via !== 'string') return { enabled: false, reason: 'invalid_policy_event', detail: `${POLICY_EVENT_TYPE} has no string via` };
  if (!isObject(keys)) return { enabled: false, reason: 'invalid_policy_event', detail: `${POLICY_EVENT_TYPE} has no public_keys object` };
  if (typeof keys.ed25519 !== 'string') return { enabled: false, reason: 'invalid_policy_event', detail: `${POLICY_EVENT_TYPE} public_keys has no string ed25519` };
  for (const server of joinedServers) {
    if (server === via) return { enabled: true, via, publicKey: keys.ed25519, policyEventId: policyEvent.event_id };
  }
  return { enabled: false, reason: 'policy_server_not_joined', detail: `${via} has no joined user in the room` };
}

/** The same, reading the policy event and every membership of `state` (a room's current state) through `lookup`. */
export function roomPolicyServer(state: StateMap, lookup: EventLookup): RoomPolicyServer {
  const policyId = state.get(POLICY_STATE_KEY);
  const policyEvent = policyId === undefined ? undefined : lookup(policyId);
  const probe = policyServerOf(policyEvent, []);
  if (probe.enabled || probe.reason !== 'policy_server_not_joined') return probe;
  return policyServerOf(policyEvent, joinedServersOf(state, lookup));
}

function* joinedServersOf(state: StateMap, lookup: EventLookup): Iterable<string> {
  const prefix = stateMapKey('m.room.member', '');
  for (const [key, id] of state) {
    if (!key.startsWith(prefix)) continue;
    const member = lookup(id);
    if (member?.content.membership === 'join' && typeof member.state_key === 'string') yield domainOf(member.state_key);
  }
}
