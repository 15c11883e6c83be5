// createRoom as a list of events, in the order the client-server spec prescribes. Pure: validation
// errors are the Matrix errors a homeserver answers with.
import { DEFAULT_ROOM_VERSION, isSupportedRoomVersion, parseUserId, roomVersionRules } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { isObject } from '@fedgate/room-state';

export interface PlannedEvent {
  type: string;
  stateKey?: string;
  content: Record<string, unknown>;
}

export interface CreateRoomPlan {
  roomVersion: string;
  /** `#<room_alias_name>:<server>` when asked for: published before the canonical alias event. */
  alias?: string;
  /** Everything after the create event, in order. */
  events: PlannedEvent[];
  createContent: Record<string, unknown>;
  invitees: string[];
  visibility: 'public' | 'private';
}

const presets = {
  private_chat: { joinRule: 'invite', guestAccess: 'can_join' },
  trusted_private_chat: { joinRule: 'invite', guestAccess: 'can_join' },
  public_chat: { joinRule: 'public', guestAccess: 'forbidden' },
} as const;
type Preset = keyof typeof presets;

export function planCreateRoom(
  body: unknown,
  creator: string,
  serverName: string,
  profile: { displayname?: string | null; avatar_url?: string | null } = {},
  /** The configured default (`rooms.defaultVersion`), used when the body names no room_version. */
  defaultRoomVersion: string = DEFAULT_ROOM_VERSION,
): CreateRoomPlan {
  if (!isObject(body)) throw MatrixError.badJson('createRoom body must be a JSON object');
  const optionalString = (field: string): string | undefined => {
    const value = body[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw MatrixError.badJson(`${field} must be a string`);
    return value;
  };
  const visibility = optionalString('visibility') ?? 'private';
  if (visibility !== 'public' && visibility !== 'private') throw MatrixError.badJson('visibility must be public or private');
  const preset = (optionalString('preset') ?? (visibility === 'public' ? 'public_chat' : 'private_chat')) as Preset;
  if (!(preset in presets)) throw MatrixError.badJson(`Unknown preset ${JSON.stringify(preset)}`);

  const roomVersion = optionalString('room_version') ?? defaultRoomVersion;
  if (!isSupportedRoomVersion(roomVersion)) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${roomVersion} is not supported`);
  const rules = roomVersionRules(roomVersion);

  const invite = body.invite ?? [];
  if (!Array.isArray(invite) || invite.some((u) => typeof u !== 'string')) throw MatrixError.badJson('invite must be a list of user IDs');
  for (const userId of invite as string[]) {
    try {
      parseUserId(userId);
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId)} is not a valid user ID`);
    }
  }
  const invitees = [...new Set(invite as string[])].filter((userId) => userId !== creator);
  const isDirect = body.is_direct;
  if (isDirect !== undefined && typeof isDirect !== 'boolean') throw MatrixError.badJson('is_direct must be a boolean');

  const creationContent = body.creation_content ?? {};
  if (!isObject(creationContent)) throw MatrixError.badJson('creation_content must be an object');
  const createContent: Record<string, unknown> = { ...creationContent, room_version: roomVersion };
  if (rules.creatorIsSender) delete createContent.creator;
  else createContent.creator = creator;
  if (rules.additionalCreators && preset === 'trusted_private_chat') {
    const given = Array.isArray(createContent.additional_creators) ? (createContent.additional_creators as unknown[]) : [];
    createContent.additional_creators = [...new Set([...given, ...invitees])];
  }

  const override = body.power_level_content_override;
  if (override !== undefined && !isObject(override)) throw MatrixError.badJson('power_level_content_override must be an object');
  const initialState = body.initial_state ?? [];
  if (!Array.isArray(initialState)) throw MatrixError.badJson('initial_state must be a list');
  const initial = initialState.map((entry, index): PlannedEvent => {
    if (!isObject(entry) || typeof entry.type !== 'string' || !isObject(entry.content)) {
      throw MatrixError.badJson(`initial_state[${index}] needs a type and a content object`);
    }
    if (entry.state_key !== undefined && typeof entry.state_key !== 'string') throw MatrixError.badJson(`initial_state[${index}].state_key must be a string`);
    return { type: entry.type, stateKey: (entry.state_key as string | undefined) ?? '', content: entry.content };
  });

  const aliasName = optionalString('room_alias_name');
  let alias: string | undefined;
  if (aliasName !== undefined) {
    if (aliasName.length === 0 || /[:\s#]/.test(aliasName)) throw MatrixError.invalidParam(`Invalid room_alias_name ${JSON.stringify(aliasName)}`);
    alias = `#${aliasName}:${serverName}`;
  }
  const name = optionalString('name');
  const topic = optionalString('topic');

  const member: Record<string, unknown> = { membership: 'join' };
  if (profile.displayname) member.displayname = profile.displayname;
  if (profile.avatar_url) member.avatar_url = profile.avatar_url;

  const events: PlannedEvent[] = [{ type: 'm.room.member', stateKey: creator, content: member }];
  events.push({ type: 'm.room.power_levels', stateKey: '', content: { ...defaultPowerLevels(creator, rules.additionalCreators, preset, invitees), ...(override ?? {}) } });
  if (alias) events.push({ type: 'm.room.canonical_alias', stateKey: '', content: { alias } });
  const presetValues = presets[preset];
  events.push({ type: 'm.room.join_rules', stateKey: '', content: { join_rule: presetValues.joinRule } });
  events.push({ type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: 'shared' } });
  events.push({ type: 'm.room.guest_access', stateKey: '', content: { guest_access: presetValues.guestAccess } });
  events.push(...initial);
  if (name !== undefined) events.push({ type: 'm.room.name', stateKey: '', content: { name } });
  if (topic !== undefined) events.push({ type: 'm.room.topic', stateKey: '', content: { topic } });
  for (const userId of invitees) {
    events.push({ type: 'm.room.member', stateKey: userId, content: { membership: 'invite', ...(isDirect ? { is_direct: true } : {}) } });
  }
  return { roomVersion, alias, events, createContent, invitees, visibility };
}

function defaultPowerLevels(creator: string, creatorsHaveInfinitePower: boolean, preset: Preset, invitees: string[]): Record<string, unknown> {
  const users: Record<string, number> = {};
  if (!creatorsHaveInfinitePower) {
    users[creator] = 100;
    if (preset === 'trusted_private_chat') for (const userId of invitees) users[userId] = 100;
  }
  return {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      // v12: must be above state_default explicitly.
      'm.room.tombstone': creatorsHaveInfinitePower ? 150 : 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === 'public_chat' ? 50 : 0,
  };
}
