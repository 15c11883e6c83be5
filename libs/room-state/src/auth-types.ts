// The auth events selection algorithm (server-server API, "Auth events selection").
import type { RoomVersionRules } from '@fedgate/protocol';
import { isObject, stateMapKey, type RoomEvent } from './event';

export interface StateKeyRef {
  readonly type: string;
  readonly state_key: string;
}

/** The (type, state_key) pairs an event's auth events are selected from; empty for a create event. */
export function authTypesForEvent(event: Pick<RoomEvent, 'type' | 'sender' | 'state_key' | 'content'>, rules: RoomVersionRules): StateKeyRef[] {
  if (event.type === 'm.room.create') return [];
  const refs: StateKeyRef[] = [];
  if (!rules.roomIdFromCreateEvent) refs.push({ type: 'm.room.create', state_key: '' });
  refs.push({ type: 'm.room.power_levels', state_key: '' });
  refs.push({ type: 'm.room.member', state_key: event.sender });
  if (event.type === 'm.room.member' && typeof event.state_key === 'string') {
    refs.push({ type: 'm.room.member', state_key: event.state_key });
    const membership = event.content.membership;
    if (membership === 'join' || membership === 'invite' || membership === 'knock') refs.push({ type: 'm.room.join_rules', state_key: '' });
    const tpi = event.content.third_party_invite;
    if (membership === 'invite' && isObject(tpi) && isObject(tpi.signed) && typeof tpi.signed.token === 'string') {
      refs.push({ type: 'm.room.third_party_invite', state_key: tpi.signed.token });
    }
    const via = event.content.join_authorised_via_users_server;
    if (membership === 'join' && rules.restrictedJoin && typeof via === 'string') refs.push({ type: 'm.room.member', state_key: via });
  }
  return refs;
}

export function authStateKeysForEvent(event: Pick<RoomEvent, 'type' | 'sender' | 'state_key' | 'content'>, rules: RoomVersionRules): Set<string> {
  return new Set(authTypesForEvent(event, rules).map((r) => stateMapKey(r.type, r.state_key)));
}
