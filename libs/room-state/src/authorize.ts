// Event authorization, rule by rule as each room version's "Authorisation rules" section states them.
import { isSupportedRoomVersion, type RoomVersionRules } from '@fedgate/protocol';
import { authStateKeysForEvent, authTypesForEvent } from './auth-types';
import { domainOf, isObject, isStateEvent, stateMapKey, type EventLookup, type RoomEvent, type StateMap } from './event';
import { parsePowerLevelValue, powerLevelsOf, requiredPowerLevel, roomCreators, userPowerLevel } from './power-levels';
import { joinRuleNumber, memberRuleNumber, powerLevelRuleNumber, ruleNumber } from './rule-ids';
import { thirdPartyInvitePublicKeys, verifyThirdPartyInviteSignature } from './third-party-invite';

/** Why an event was rejected: a stable `code`, the rule's number in that room version, and a sentence. */
export interface AuthRejection {
  readonly code: string;
  readonly rule: string;
  readonly message: string;
}

export type AuthResult = { readonly allowed: true } | { readonly allowed: false; readonly reason: AuthRejection };

/** The state an event is checked against: its auth events, the state before it, or the room's current state. */
export interface AuthState {
  readonly create: RoomEvent | undefined;
  get(type: string, stateKey: string): RoomEvent | undefined;
}

/** Cryptographic checks the rules call for; the defaults are described on each. */
export interface AuthPorts {
  /**
   * Whether `event` carries a valid signature from `serverName` (restricted joins). Default: a signature from that
   * server is present. The engine does no I/O, so the cryptographic check happens on receipt: the authoriser's server
   * is one of `requiredEventSigners`, which every receive path verifies with a key valid at `origin_server_ts`
   * (federation-client `verifyRemoteEvents`); an event that fails never reaches the engine.
   */
  isSignedBy?(event: RoomEvent, serverName: string): boolean;
  /** Default: ed25519 verification of the canonical `signed` object against each public key. */
  verifyThirdPartyInvite?(signed: Record<string, unknown>, publicKeys: readonly string[]): boolean;
}

const ALLOW: AuthResult = Object.freeze({ allowed: true });

function reject(code: string, rule: string, message: string): AuthResult {
  return { allowed: false, reason: { code, rule, message: `${message} (auth rule ${rule})` } };
}

function defaultIsSignedBy(event: RoomEvent, serverName: string): boolean {
  const sigs = event.signatures?.[serverName];
  return isObject(sigs) && Object.keys(sigs).length > 0;
}

function isValidUserId(id: unknown): id is string {
  return typeof id === 'string' && id.startsWith('@') && id.indexOf(':') > 1;
}

function membershipOf(state: AuthState, userId: string): string | undefined {
  const m = state.get('m.room.member', userId)?.content.membership;
  return typeof m === 'string' ? m : undefined;
}

/** The user who may join first: `content.creator` before v11, the create event's sender from v11. */
function firstJoiner(create: RoomEvent, rules: RoomVersionRules): unknown {
  return rules.creatorIsSender ? create.sender : create.content.creator;
}

export function roomIdForCreateEvent(createEventId: string): string {
  return '!' + createEventId.slice(1);
}

export function createEventIdForRoom(roomId: string): string {
  return '$' + roomId.slice(1);
}

/** The room an event belongs to: its room_id, or for a room version 12 create event the room its ID names. */
export function roomOfEvent(event: RoomEvent): string | undefined {
  if (event.room_id !== undefined) return event.room_id;
  return event.type === 'm.room.create' && event.state_key === '' ? roomIdForCreateEvent(event.event_id) : undefined;
}

/**
 * The first event the rules would read for `event` (its create event and the auth-selected state) that belongs to
 * another room. Whatever state a caller hands in, another room's power levels or memberships never decide.
 */
function foreignAuthEvent(event: RoomEvent, create: RoomEvent, state: AuthState, rules: RoomVersionRules): RoomEvent | undefined {
  if (roomOfEvent(create) !== event.room_id) return create;
  for (const ref of authTypesForEvent(event, rules)) {
    const e = ref.type === 'm.room.create' ? undefined : state.get(ref.type, ref.state_key);
    if (e && roomOfEvent(e) !== event.room_id) return e;
  }
  return undefined;
}

/** Every rule except those about the `auth_events` list itself (see `checkAuthEventsList`). */
export function authorizeEvent(event: RoomEvent, state: AuthState, rules: RoomVersionRules, ports: AuthPorts = {}): AuthResult {
  if (event.type === 'm.room.create' && event.state_key === '') return authorizeCreate(event, rules);

  const create = state.create;
  if (rules.roomIdFromCreateEvent) {
    if (!create || event.room_id !== roomIdForCreateEvent(create.event_id)) {
      return reject('room_id_not_create_event', ruleNumber(rules, 'room_id'), `room_id ${event.room_id} is not the ID of an accepted m.room.create event`);
    }
  } else if (!create) {
    return reject('missing_create_event', ruleNumber(rules, 'auth_events', 4), 'no m.room.create event in the state');
  }
  const c = create!;
  const foreign = foreignAuthEvent(event, c, state, rules);
  if (foreign) {
    return reject('auth_event_other_room', ruleNumber(rules, 'auth_events', 5), `auth event ${foreign.event_id} is in room ${String(roomOfEvent(foreign))}, not ${event.room_id}`);
  }

  if (c.content['m.federate'] === false && domainOf(event.sender) !== domainOf(c.sender)) {
    return reject('not_federated', ruleNumber(rules, 'federate'), `room is not federated and ${event.sender} is not on the creator's server`);
  }

  if (rules.specialCaseAliasesAuth && event.type === 'm.room.aliases') {
    if (event.state_key === undefined) return reject('aliases_no_state_key', ruleNumber(rules, 'aliases', 1), 'm.room.aliases has no state_key');
    if (event.state_key !== domainOf(event.sender)) {
      return reject('aliases_wrong_domain', ruleNumber(rules, 'aliases', 2), `sender's domain does not match state_key ${event.state_key}`);
    }
    return ALLOW;
  }

  const plEvent = state.get('m.room.power_levels', '');
  const levels = powerLevelsOf(plEvent, rules);
  const powerOf = (user: string) => userPowerLevel(user, plEvent, c, rules);

  if (event.type === 'm.room.member') return authorizeMembership(event, state, c, rules, ports);

  const senderPower = powerOf(event.sender);
  if (membershipOf(state, event.sender) !== 'join') {
    return reject('sender_not_joined', ruleNumber(rules, 'sender_joined'), `${event.sender} is not joined to the room`);
  }

  if (event.type === 'm.room.third_party_invite') {
    if (senderPower >= levels.invite) return ALLOW;
    return reject('third_party_invite_power', ruleNumber(rules, 'third_party_invite', 1), `${event.sender} has power ${senderPower}, below the invite level ${levels.invite}`);
  }

  const required = requiredPowerLevel(event.type, isStateEvent(event), levels);
  if (required > senderPower) {
    return reject('insufficient_power', ruleNumber(rules, 'required_power'), `${event.type} needs power ${required}; ${event.sender} has ${senderPower}`);
  }

  if (event.state_key !== undefined && event.state_key.startsWith('@') && event.state_key !== event.sender) {
    return reject('state_key_other_user', ruleNumber(rules, 'state_key_user'), `state_key ${event.state_key} names a user other than the sender`);
  }

  if (event.type === 'm.room.power_levels') return authorizePowerLevels(event, plEvent, senderPower, c, rules);

  if (rules.redactionAuthByEventIdDomain && event.type === 'm.room.redaction') {
    if (senderPower >= levels.redact) return ALLOW;
    const redacts = event.redacts ?? (typeof event.content.redacts === 'string' ? event.content.redacts : undefined);
    if (redacts !== undefined && domainOf(redacts) === domainOf(event.event_id)) return ALLOW;
    return reject('redaction_not_allowed', ruleNumber(rules, 'redaction', 3), `${event.sender} is below the redact level and the redacted event is from another server`);
  }

  return ALLOW;
}

function authorizeCreate(event: RoomEvent, rules: RoomVersionRules): AuthResult {
  if (event.prev_events.length > 0) return reject('create_has_prev_events', ruleNumber(rules, 'create', 1), 'm.room.create has prev_events');
  if (rules.roomIdFromCreateEvent) {
    if (event.room_id !== undefined) return reject('create_has_room_id', ruleNumber(rules, 'create', 2), 'm.room.create has a room_id');
  } else if (event.room_id === undefined || domainOf(event.room_id) !== domainOf(event.sender)) {
    return reject('create_room_id_domain', ruleNumber(rules, 'create', 2), `room_id ${event.room_id} is not on the sender's server`);
  }
  const version = event.content.room_version;
  if (version !== undefined && !isSupportedRoomVersion(version)) {
    return reject('create_unknown_room_version', ruleNumber(rules, 'create', 3), `room_version ${JSON.stringify(version)} is not recognised`);
  }
  if (rules.additionalCreators) {
    const extra = event.content.additional_creators;
    if (extra !== undefined && !(Array.isArray(extra) && extra.every(isValidUserId))) {
      return reject('create_invalid_additional_creators', ruleNumber(rules, 'create', 4), 'additional_creators is not an array of user IDs');
    }
  } else if (!rules.creatorIsSender && event.content.creator === undefined) {
    return reject('create_no_creator', ruleNumber(rules, 'create', 4), 'm.room.create content has no creator');
  }
  return ALLOW;
}

function authorizeMembership(event: RoomEvent, state: AuthState, create: RoomEvent, rules: RoomVersionRules, ports: AuthPorts): AuthResult {
  const membership = event.content.membership;
  const target = event.state_key;
  if (target === undefined || typeof membership !== 'string') {
    return reject('member_missing_fields', memberRuleNumber(rules, 'fields'), 'm.room.member has no state_key or no membership');
  }
  const via = event.content.join_authorised_via_users_server;
  if (rules.restrictedJoin && via !== undefined) {
    const isSignedBy = ports.isSignedBy ?? defaultIsSignedBy;
    if (typeof via !== 'string' || !isSignedBy(event, domainOf(via))) {
      return reject('join_authorised_not_signed', memberRuleNumber(rules, 'join_authorised_signature', 1), `event is not signed by the server of join_authorised_via_users_server ${String(via)}`);
    }
  }

  const plEvent = state.get('m.room.power_levels', '');
  const levels = powerLevelsOf(plEvent, rules);
  const powerOf = (user: string) => userPowerLevel(user, plEvent, create, rules);
  const joinRule = state.get('m.room.join_rules', '')?.content.join_rule;
  const senderMembership = membershipOf(state, event.sender);
  const targetMembership = membershipOf(state, target);

  switch (membership) {
    case 'join': {
      if (event.prev_events.length === 1 && event.prev_events[0] === create.event_id && target === firstJoiner(create, rules)) return ALLOW;
      if (event.sender !== target) return reject('join_sender_not_target', joinRuleNumber(rules, 'sender_not_target'), 'sender does not match state_key');
      if (senderMembership === 'ban') return reject('join_banned', joinRuleNumber(rules, 'banned'), `${event.sender} is banned`);
      if (joinRule === 'invite' || (rules.knock && joinRule === 'knock')) {
        if (senderMembership === 'invite' || senderMembership === 'join') return ALLOW;
        return reject('join_not_invited', joinRuleNumber(rules, 'invite_rule'), `join rule is ${joinRule} and ${event.sender} is not invited`);
      }
      if ((rules.restrictedJoin && joinRule === 'restricted') || (rules.knockRestrictedJoin && joinRule === 'knock_restricted')) {
        if (senderMembership === 'join' || senderMembership === 'invite') return ALLOW;
        if (typeof via !== 'string' || membershipOf(state, via) !== 'join' || powerOf(via) < levels.invite) {
          return reject('join_restricted_unauthorised', joinRuleNumber(rules, 'restricted', 2), `join_authorised_via_users_server ${String(via)} is not a joined member able to invite`);
        }
        return ALLOW;
      }
      if (joinRule === 'public') return ALLOW;
      return reject('join_not_allowed', joinRuleNumber(rules, 'otherwise'), `join rule ${JSON.stringify(joinRule ?? null)} does not allow ${event.sender} to join`);
    }
    case 'invite': {
      const tpi = event.content.third_party_invite;
      if (tpi !== undefined) return authorizeThirdPartyInvite(event, tpi, target, targetMembership, state, rules, ports);
      if (senderMembership !== 'join') return reject('invite_sender_not_joined', memberRuleNumber(rules, 'invite', 2), `${event.sender} is not joined`);
      if (targetMembership === 'join' || targetMembership === 'ban') {
        return reject('invite_target_joined_or_banned', memberRuleNumber(rules, 'invite', 3), `${target} is already ${targetMembership}`);
      }
      if (powerOf(event.sender) >= levels.invite) return ALLOW;
      return reject('invite_insufficient_power', memberRuleNumber(rules, 'invite', 5), `${event.sender} is below the invite level ${levels.invite}`);
    }
    case 'leave': {
      if (event.sender === target) {
        if (senderMembership === 'invite' || senderMembership === 'join' || (rules.knock && senderMembership === 'knock')) return ALLOW;
        return reject('leave_not_member', memberRuleNumber(rules, 'leave', 1), `${target} cannot leave from membership ${senderMembership ?? 'none'}`);
      }
      if (senderMembership !== 'join') return reject('kick_sender_not_joined', memberRuleNumber(rules, 'leave', 2), `${event.sender} is not joined`);
      const senderPower = powerOf(event.sender);
      if (targetMembership === 'ban' && senderPower < levels.ban) {
        return reject('unban_insufficient_power', memberRuleNumber(rules, 'leave', 3), `${event.sender} is below the ban level ${levels.ban}`);
      }
      if (senderPower >= levels.kick && powerOf(target) < senderPower) return ALLOW;
      return reject('kick_insufficient_power', memberRuleNumber(rules, 'leave', 5), `${event.sender} cannot kick ${target}`);
    }
    case 'ban': {
      if (senderMembership !== 'join') return reject('ban_sender_not_joined', memberRuleNumber(rules, 'ban', 1), `${event.sender} is not joined`);
      const senderPower = powerOf(event.sender);
      if (senderPower >= levels.ban && powerOf(target) < senderPower) return ALLOW;
      return reject('ban_insufficient_power', memberRuleNumber(rules, 'ban', 3), `${event.sender} cannot ban ${target}`);
    }
    case 'knock': {
      if (!rules.knock) break;
      if (!(joinRule === 'knock' || (rules.knockRestrictedJoin && joinRule === 'knock_restricted'))) {
        return reject('knock_not_allowed', memberRuleNumber(rules, 'knock', 1), `join rule ${JSON.stringify(joinRule ?? null)} does not allow knocking`);
      }
      if (event.sender !== target) return reject('knock_sender_not_target', memberRuleNumber(rules, 'knock', 2), 'sender does not match state_key');
      if (senderMembership !== 'ban' && senderMembership !== 'invite' && senderMembership !== 'join') return ALLOW;
      return reject('knock_already_member', memberRuleNumber(rules, 'knock', 4), `${event.sender} is ${senderMembership}`);
    }
  }
  return reject('unknown_membership', memberRuleNumber(rules, 'unknown'), `membership ${JSON.stringify(membership)} is unknown`);
}

function authorizeThirdPartyInvite(
  event: RoomEvent, tpi: unknown, target: string, targetMembership: string | undefined, state: AuthState, rules: RoomVersionRules, ports: AuthPorts,
): AuthResult {
  const n = (i: number) => memberRuleNumber(rules, 'invite', 1, i);
  if (targetMembership === 'ban') return reject('third_party_invite_target_banned', n(1), `${target} is banned`);
  const signed = isObject(tpi) ? tpi.signed : undefined;
  if (!isObject(signed)) return reject('third_party_invite_no_signed', n(2), 'third_party_invite has no signed object');
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') return reject('third_party_invite_signed_fields', n(3), 'signed lacks mxid or token');
  if (signed.mxid !== target) return reject('third_party_invite_mxid_mismatch', n(4), `signed.mxid ${signed.mxid} is not the state_key`);
  const invite = state.get('m.room.third_party_invite', signed.token);
  if (!invite) return reject('third_party_invite_missing', n(5), `no m.room.third_party_invite with token ${signed.token}`);
  if (invite.sender !== event.sender) return reject('third_party_invite_sender_mismatch', n(6), 'sender differs from the m.room.third_party_invite sender');
  const verify = ports.verifyThirdPartyInvite ?? verifyThirdPartyInviteSignature;
  if (verify(signed, thirdPartyInvitePublicKeys(invite))) return ALLOW;
  return reject('third_party_invite_bad_signature', n(8), 'no signature in signed matches a public key of the invite');
}

const LEVEL_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

function rawLevels(value: unknown, rules: RoomVersionRules): Map<string, number> {
  const out = new Map<string, number>();
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const n = parsePowerLevelValue(v, rules);
      if (n !== undefined) out.set(k, n);
    }
  }
  return out;
}

function authorizePowerLevels(event: RoomEvent, previous: RoomEvent | undefined, senderPower: number, create: RoomEvent, rules: RoomVersionRules): AuthResult {
  const n = (step: Parameters<typeof powerLevelRuleNumber>[1], ...rest: number[]) => powerLevelRuleNumber(rules, step, ...rest);
  const content = event.content;
  if (rules.integerPowerLevels) {
    for (const key of LEVEL_KEYS) {
      if (content[key] !== undefined && !Number.isInteger(content[key])) return reject('power_levels_not_integer', n('integer_levels'), `${key} is not an integer`);
    }
    for (const key of ['events', 'notifications']) {
      const v = content[key];
      if (v !== undefined && !(isObject(v) && Object.values(v).every((x) => Number.isInteger(x)))) {
        return reject('power_levels_not_integer', n('integer_event_levels'), `${key} is not an object of integers`);
      }
    }
  }
  const users = content.users;
  if (users !== undefined) {
    if (!isObject(users)) return reject('power_levels_invalid_users', n('users'), 'users is not an object');
    for (const [user, value] of Object.entries(users)) {
      if (!isValidUserId(user) || parsePowerLevelValue(value, rules) === undefined) {
        return reject('power_levels_invalid_users', n('users'), `users entry ${user} is not a user ID with an integer level`);
      }
    }
    if (rules.additionalCreators) {
      for (const creator of roomCreators(create, rules)) {
        if (Object.hasOwn(users, creator)) return reject('power_levels_names_creator', n('creators_in_users'), `users names room creator ${creator}`);
      }
    }
  }
  if (!previous) return ALLOW;

  const old = previous.content;
  for (const key of LEVEL_KEYS) {
    const before = parsePowerLevelValue(old[key], rules);
    const after = parsePowerLevelValue(content[key], rules);
    if (before === after) continue;
    if (before !== undefined && before > senderPower) return reject('power_levels_change_above_sender', n('levels_changed', 1), `${key} is currently ${before}, above the sender's ${senderPower}`);
    if (after !== undefined && after > senderPower) return reject('power_levels_change_above_sender', n('levels_changed', 2), `${key} would be ${after}, above the sender's ${senderPower}`);
  }
  const maps = rules.limitNotificationsPowerLevels ? ['events', 'notifications'] : ['events'];
  for (const key of maps) {
    const before = rawLevels(old[key], rules);
    const after = rawLevels(content[key], rules);
    for (const [k, v] of before) {
      if (after.get(k) !== v && v > senderPower) return reject('power_levels_change_above_sender', n('events_removed', 1), `${key}.${k} is currently ${v}, above the sender's ${senderPower}`);
    }
    for (const [k, v] of after) {
      if (before.get(k) !== v && v > senderPower) return reject('power_levels_change_above_sender', n('events_added', 1), `${key}.${k} would be ${v}, above the sender's ${senderPower}`);
    }
  }
  const usersBefore = rawLevels(old.users, rules);
  const usersAfter = rawLevels(users, rules);
  for (const [user, v] of usersBefore) {
    if (user !== event.sender && usersAfter.get(user) !== v && v >= senderPower) {
      return reject('power_levels_demote_peer', n('users_removed', 1), `${user} has ${v}, not below the sender's ${senderPower}`);
    }
  }
  for (const [user, v] of usersAfter) {
    if (usersBefore.get(user) !== v && v > senderPower) return reject('power_levels_change_above_sender', n('users_added', 1), `${user} would get ${v}, above the sender's ${senderPower}`);
  }
  return ALLOW;
}

/** Auth state read from a state map; v12 rooms find the create event through the event's room_id. */
export function authStateFromMap(state: StateMap, lookup: EventLookup, roomId?: string): AuthState {
  const createId = state.get(stateMapKey('m.room.create', '')) ?? (roomId?.startsWith('!') ? createEventIdForRoom(roomId) : undefined);
  return {
    create: createId === undefined ? undefined : lookup(createId),
    get: (type, stateKey) => {
      const id = state.get(stateMapKey(type, stateKey));
      return id === undefined ? undefined : lookup(id);
    },
  };
}

/** Auth state made of an event's own auth events (plus, in v12, the create event its room_id names). */
export function authStateFromAuthEvents(event: RoomEvent, lookup: EventLookup, rules: RoomVersionRules): AuthState {
  const byKey = new Map<string, RoomEvent>();
  for (const id of event.auth_events) {
    const e = lookup(id);
    if (e && e.state_key !== undefined) byKey.set(stateMapKey(e.type, e.state_key), e);
  }
  let create = byKey.get(stateMapKey('m.room.create', ''));
  if (rules.roomIdFromCreateEvent && event.room_id) create = lookup(createEventIdForRoom(event.room_id));
  return { create, get: (type, stateKey) => byKey.get(stateMapKey(type, stateKey)) };
}

/** The rules about the `auth_events` list: duplicates, unexpected entries, rejected entries, missing create, other rooms. */
export function checkAuthEventsList(event: RoomEvent, lookup: EventLookup, rules: RoomVersionRules, isRejected: (id: string) => boolean = () => false): AuthResult {
  if (event.type === 'm.room.create' && event.state_key === '') return ALLOW;
  if (rules.roomIdFromCreateEvent) {
    const createId = event.room_id?.startsWith('!') ? createEventIdForRoom(event.room_id) : undefined;
    const create = createId === undefined ? undefined : lookup(createId);
    if (!create || create.type !== 'm.room.create' || isRejected(create.event_id)) {
      return reject('room_id_not_create_event', ruleNumber(rules, 'room_id'), `room_id ${event.room_id} is not the ID of an accepted m.room.create event`);
    }
  }
  const allowed = authStateKeysForEvent(event, rules);
  const seen = new Set<string>();
  let sawCreate = false;
  for (const id of event.auth_events) {
    const authEvent = lookup(id);
    if (!authEvent || authEvent.state_key === undefined) {
      return reject('auth_event_unknown', ruleNumber(rules, 'auth_events', 2), `auth event ${id} is unknown or not a state event`);
    }
    const key = stateMapKey(authEvent.type, authEvent.state_key);
    if (seen.has(key)) return reject('auth_events_duplicate', ruleNumber(rules, 'auth_events', 1), `two auth events for (${authEvent.type}, ${authEvent.state_key})`);
    seen.add(key);
    if (!allowed.has(key)) return reject('auth_events_unexpected', ruleNumber(rules, 'auth_events', 2), `auth event ${id} (${authEvent.type}, ${authEvent.state_key}) is not one the selection algorithm picks`);
    if (isRejected(id)) return reject('auth_event_rejected', ruleNumber(rules, 'auth_events', 3), `auth event ${id} was rejected`);
    if (authEvent.type === 'm.room.create') sawCreate = true;
    if (!(rules.roomIdFromCreateEvent && authEvent.type === 'm.room.create') && authEvent.room_id !== event.room_id) {
      return reject('auth_event_other_room', ruleNumber(rules, 'auth_events', rules.roomIdFromCreateEvent ? 5 : 5), `auth event ${id} is in room ${authEvent.room_id}`);
    }
  }
  if (!rules.roomIdFromCreateEvent && !sawCreate) return reject('missing_create_event', ruleNumber(rules, 'auth_events', 4), 'no m.room.create event among the auth events');
  return ALLOW;
}

/** Check 4 on receipt of a PDU: the auth_events list, then every rule against those auth events. */
export function authorizeByAuthEvents(
  event: RoomEvent, lookup: EventLookup, rules: RoomVersionRules, isRejected: (id: string) => boolean = () => false, ports: AuthPorts = {},
): AuthResult {
  const listed = checkAuthEventsList(event, lookup, rules, isRejected);
  if (!listed.allowed) return listed;
  return authorizeEvent(event, authStateFromAuthEvents(event, lookup, rules), rules, ports);
}
