// Whether a user has the power to send a state event, read from the room's current state by the auth
// rules of @fedgate/room-state (its version's value rules, creators of v12 rooms): the check before a
// client-server action, so the refusal comes before any event is made rather than from the auth rules.
import { roomVersionRules } from '@fedgate/protocol';
import { powerLevelsOf, requiredPowerLevel, toRoomEvent, userPowerLevel } from '@fedgate/room-state';
import { stateTupleKey } from '@fedgate/store';
import type { CurrentState } from './room-view';

/** The room's version must be supported (`isSupportedRoomVersion`). */
export function hasStatePower(state: CurrentState, userId: string, type: string): boolean {
  const rules = roomVersionRules(state.room.roomVersion);
  const event = (eventType: string) => {
    const record = state.events.get(stateTupleKey(eventType, ''));
    return record && toRoomEvent(record.pdu, record.eventId);
  };
  const powerLevels = event('m.room.power_levels');
  return userPowerLevel(userId, powerLevels, event('m.room.create'), rules) >= requiredPowerLevel(type, true, powerLevelsOf(powerLevels, rules));
}
