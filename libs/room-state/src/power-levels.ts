// Power levels as the auth rules read them: parsed once per event, with the per-version value formats.
import type { RoomVersionRules } from '@fedgate/protocol';
import { isObject, type RoomEvent } from './event';

export interface PowerLevels {
  readonly users: ReadonlyMap<string, number>;
  readonly usersDefault: number;
  readonly eventsDefault: number;
  readonly stateDefault: number;
  readonly ban: number;
  readonly kick: number;
  readonly redact: number;
  readonly invite: number;
  readonly events: ReadonlyMap<string, number>;
  readonly notifications: ReadonlyMap<string, number>;
}

const STRINGY_INTEGER = /^\s*[+-]?\d+\s*$/;

/**
 * Reads one power-level value. Room versions 1–9 accept integer strings (leading zeroes, sign, whitespace) and,
 * before strict canonical JSON, floats truncated toward zero; v10+ accept JSON integers only.
 * Returns undefined when the value is not acceptable.
 */
export function parsePowerLevelValue(value: unknown, rules: RoomVersionRules): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    if (rules.integerPowerLevels || !Number.isFinite(value)) return undefined;
    return Math.trunc(value);
  }
  if (typeof value === 'string' && !rules.integerPowerLevels && STRINGY_INTEGER.test(value)) return Number.parseInt(value.trim(), 10);
  return undefined;
}

function level(content: Record<string, unknown>, key: string, fallback: number, rules: RoomVersionRules): number {
  return parsePowerLevelValue(content[key], rules) ?? fallback;
}

function levelMap(value: unknown, rules: RoomVersionRules): Map<string, number> {
  const map = new Map<string, number>();
  if (!isObject(value)) return map;
  for (const [k, v] of Object.entries(value)) {
    const n = parsePowerLevelValue(v, rules);
    if (n !== undefined) map.set(k, n);
  }
  return map;
}

/** The defaults a room has when it has no `m.room.power_levels` event. */
export const NO_POWER_LEVELS_EVENT: PowerLevels = Object.freeze({
  users: new Map(),
  usersDefault: 0,
  eventsDefault: 0,
  stateDefault: 0,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  events: new Map(),
  notifications: new Map(),
});

const parsed = new WeakMap<object, PowerLevels>();

export function powerLevelsOf(event: RoomEvent | undefined, rules: RoomVersionRules): PowerLevels {
  if (!event) return NO_POWER_LEVELS_EVENT;
  const cached = parsed.get(event.content);
  if (cached) return cached;
  const c = event.content as Record<string, unknown>;
  const levels: PowerLevels = {
    users: levelMap(c.users, rules),
    usersDefault: level(c, 'users_default', 0, rules),
    eventsDefault: level(c, 'events_default', 0, rules),
    stateDefault: level(c, 'state_default', 50, rules),
    ban: level(c, 'ban', 50, rules),
    kick: level(c, 'kick', 50, rules),
    redact: level(c, 'redact', 50, rules),
    invite: level(c, 'invite', 0, rules),
    events: levelMap(c.events, rules),
    notifications: levelMap(c.notifications, rules),
  };
  parsed.set(event.content, levels);
  return levels;
}

/**
 * Room creators: in v12 the create event's sender plus `additional_creators`; in v11 the sender; before that
 * `content.creator`. Only v12 gives them infinite power; earlier creators get 100 while the room has no power levels.
 */
export function roomCreators(create: RoomEvent | undefined, rules: RoomVersionRules): ReadonlySet<string> {
  const creators = new Set<string>();
  if (!create) return creators;
  if (rules.creatorIsSender) creators.add(create.sender);
  else if (typeof create.content.creator === 'string') creators.add(create.content.creator);
  if (rules.additionalCreators && Array.isArray(create.content.additional_creators)) {
    for (const c of create.content.additional_creators) if (typeof c === 'string') creators.add(c);
  }
  return creators;
}

export function userPowerLevel(
  userId: string,
  powerLevelsEvent: RoomEvent | undefined,
  create: RoomEvent | undefined,
  rules: RoomVersionRules,
): number {
  if (rules.additionalCreators && roomCreators(create, rules).has(userId)) return Infinity;
  if (!powerLevelsEvent) return roomCreators(create, rules).has(userId) ? 100 : 0;
  const levels = powerLevelsOf(powerLevelsEvent, rules);
  return levels.users.get(userId) ?? levels.usersDefault;
}

export function requiredPowerLevel(type: string, isState: boolean, levels: PowerLevels): number {
  return levels.events.get(type) ?? (isState ? levels.stateDefault : levels.eventsDefault);
}
