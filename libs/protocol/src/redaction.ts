// The redaction algorithm of each room version (rooms/v1, v6, v8, v9, v11 "Redactions"; v12 uses v11's).
// Signatures and reference hashes cover the redacted form, so this must match other servers exactly.
import type { JsonObject } from './pdu';
import { roomVersionRules, type RedactionAlgorithm, type RoomVersionRules } from './room-versions';

const TOP_LEVEL_V1 = ['event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes', 'signatures', 'depth', 'prev_events', 'prev_state', 'auth_events', 'origin', 'origin_server_ts', 'membership'];
// v11 stops keeping origin, membership and prev_state.
const TOP_LEVEL_V11 = ['event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes', 'signatures', 'depth', 'prev_events', 'auth_events', 'origin_server_ts'];

type ContentRules = Readonly<Record<string, readonly string[] | 'all'>>;

const POWER_LEVELS_V1 = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

const CONTENT_V1: ContentRules = {
  'm.room.member': ['membership'],
  'm.room.create': ['creator'],
  'm.room.join_rules': ['join_rule'],
  'm.room.power_levels': POWER_LEVELS_V1,
  'm.room.aliases': ['aliases'],
  'm.room.history_visibility': ['history_visibility'],
};
const { 'm.room.aliases': _aliases, ...CONTENT_V6 } = CONTENT_V1;
const CONTENT_V8: ContentRules = { ...CONTENT_V6, 'm.room.join_rules': ['join_rule', 'allow'] };
const CONTENT_V9: ContentRules = { ...CONTENT_V8, 'm.room.member': ['membership', 'join_authorised_via_users_server'] };
const CONTENT_V11: ContentRules = {
  ...CONTENT_V9,
  'm.room.create': 'all',
  'm.room.power_levels': [...POWER_LEVELS_V1, 'invite'],
  'm.room.redaction': ['redacts'],
};

const ALGORITHMS: Record<RedactionAlgorithm, { topLevel: readonly string[]; content: ContentRules }> = {
  v1: { topLevel: TOP_LEVEL_V1, content: CONTENT_V1 },
  v6: { topLevel: TOP_LEVEL_V1, content: CONTENT_V6 },
  v8: { topLevel: TOP_LEVEL_V1, content: CONTENT_V8 },
  v9: { topLevel: TOP_LEVEL_V1, content: CONTENT_V9 },
  v11: { topLevel: TOP_LEVEL_V11, content: CONTENT_V11 },
};

export function rulesOf(roomVersion: RoomVersionRules | string): RoomVersionRules {
  return typeof roomVersion === 'string' ? roomVersionRules(roomVersion) : roomVersion;
}

/**
 * Returns the redacted copy of an event. Kept values are shared with the input, not copied.
 * `content` is always present in the result (empty when nothing of it is kept).
 */
export function redactEvent<T extends Record<string, unknown>>(event: T, roomVersion: RoomVersionRules | string): JsonObject {
  return redactInto(event, rulesOf(roomVersion), undefined);
}

/**
 * The redacted event minus the keys signatures do not cover (`signatures`, and `event_id` from room version 3,
 * where it is not part of the event): what signatures and reference hashes are computed over, built in one copy.
 */
export function redactForSigning<T extends Record<string, unknown>>(event: T, roomVersion: RoomVersionRules | string): JsonObject {
  const rules = rulesOf(roomVersion);
  return redactInto(event, rules, rules.eventFormat === 'v1' ? SKIP_SIGNATURES : SKIP_SIGNATURES_AND_EVENT_ID);
}

const SKIP_SIGNATURES = new Set(['signatures']);
const SKIP_SIGNATURES_AND_EVENT_ID = new Set(['signatures', 'event_id']);

function redactInto(event: Record<string, unknown>, rules: RoomVersionRules, skip: ReadonlySet<string> | undefined): JsonObject {
  const algorithm = rules.redaction;
  const { topLevel, content: contentRules } = ALGORITHMS[algorithm];
  const out: Record<string, unknown> = {};
  for (const key of topLevel) {
    if (skip?.has(key)) continue;
    if (Object.hasOwn(event, key) && event[key] !== undefined) out[key] = event[key];
  }
  const content = event.content;
  const type = event.type;
  const keep = typeof type === 'string' && Object.hasOwn(contentRules, type) ? contentRules[type] : undefined;
  let redactedContent: Record<string, unknown> = {};
  if (keep && content !== null && typeof content === 'object' && !Array.isArray(content)) {
    const source = content as Record<string, unknown>;
    // Spread, not Object.assign: a parsed "__proto__" key must stay a plain property.
    if (keep === 'all') redactedContent = { ...source };
    else for (const key of keep) if (Object.hasOwn(source, key) && source[key] !== undefined) redactedContent[key] = source[key];
    if (algorithm === 'v11' && type === 'm.room.member') {
      const invite = source.third_party_invite;
      if (invite !== null && typeof invite === 'object' && !Array.isArray(invite) && Object.hasOwn(invite, 'signed')) {
        redactedContent.third_party_invite = { signed: (invite as Record<string, unknown>).signed };
      }
    }
  }
  out.content = redactedContent;
  return out as JsonObject;
}
