// One or more cases per numbered auth rule, allowed and rejected, for each room version the rule differs in.
import { roomVersionRules, signJson, SigningKey } from '@fedgate/protocol';
import { authorizeEvent, checkAuthEventsList, type AuthState } from './authorize';
import { stateMapKey, toRoomEvent, type RoomEvent } from './event';

const ALICE = '@alice:a';
const BOB = '@bob:b';
const CAROL = '@carol:c';
const ALL = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];
const range = (from: number, to: number) => ALL.slice(from - 1, to);

function roomId(version: string) {
  return version === '12' ? '!create' : '!room:a';
}

let counter = 0;
function ev(version: string, type: string, sender: string, stateKey: string | undefined, content: Record<string, unknown>, extra: Record<string, unknown> = {}): RoomEvent {
  return toRoomEvent({ event_id: `$e${++counter}:a`, room_id: roomId(version), sender, type, state_key: stateKey, content, prev_events: ['$prev:a'], auth_events: [], origin_server_ts: counter, ...extra });
}

function createEvent(version: string, content: Record<string, unknown> = {}): RoomEvent {
  const base = version === '12' ? { room_version: version } : { creator: ALICE, room_version: version };
  return toRoomEvent({ event_id: version === '12' ? '$create' : '$create:a', room_id: version === '12' ? undefined : roomId(version), sender: ALICE, type: 'm.room.create', state_key: '', content: { ...base, ...content } });
}

/** Alice created and joined; Bob joined with power 50 (Alice 100 below v12, infinite as creator in v12); public room. */
function baseState(version: string, overrides: RoomEvent[] = [], createContent: Record<string, unknown> = {}): AuthState {
  const users = version === '12' ? { [BOB]: 50 } : { [ALICE]: 100, [BOB]: 50 };
  const events = [
    createEvent(version, createContent),
    ev(version, 'm.room.member', ALICE, ALICE, { membership: 'join' }),
    ev(version, 'm.room.power_levels', ALICE, '', { users }),
    ev(version, 'm.room.join_rules', ALICE, '', { join_rule: 'public' }),
    ev(version, 'm.room.member', BOB, BOB, { membership: 'join' }),
    ...overrides,
  ];
  const map = new Map<string, RoomEvent>();
  for (const e of events) map.set(stateMapKey(e.type, e.state_key!), e);
  return { create: map.get(stateMapKey('m.room.create', '')), get: (t, k) => map.get(stateMapKey(t, k)) };
}

const without = (state: AuthState, type: string, key = ''): AuthState => ({ create: type === 'm.room.create' ? undefined : state.create, get: (t, k) => (t === type && k === key ? undefined : state.get(t, k)) });

interface Case {
  rule: string;
  versions: string[];
  state?: (v: string) => AuthState;
  event: (v: string) => RoomEvent;
  expect: 'allow' | string;
}

const member = (v: string, sender: string, target: string, membership: string, extra: Record<string, unknown> = {}) => ev(v, 'm.room.member', sender, target, { membership, ...extra });
const joinRule = (v: string, rule: string) => ev(v, 'm.room.join_rules', ALICE, '', { join_rule: rule });
const pl = (v: string, content: Record<string, unknown>) => ev(v, 'm.room.power_levels', ALICE, '', content);
const plUsers = (v: string, extra: Record<string, unknown> = {}) => ({ users: v === '12' ? { [BOB]: 50 } : { [ALICE]: 100, [BOB]: 50 }, ...extra });

// Third-party invites: a real ed25519 key so the signature rule is exercised, not stubbed.
const identityKey = new SigningKey('0', new Uint8Array(32).fill(7));
const signedFor = (mxid: string, token: string, key = identityKey) => signJson({ mxid, sender: ALICE, token }, 'id.example', key);
const tpiEvent = (v: string, sender = ALICE) => ev(v, 'm.room.third_party_invite', sender, 'tok', { public_key: identityKey.publicKeyBase64, display_name: 'c...' });

const cases: Case[] = [
  // Create
  { rule: 'create: prev_events → reject', versions: ALL, event: (v) => ({ ...createEvent(v), prev_events: ['$x:a'] }), expect: 'create_has_prev_events' },
  { rule: 'create: room_id domain differs from sender → reject', versions: range(1, 11), event: (v) => ({ ...createEvent(v), room_id: '!room:elsewhere' }), expect: 'create_room_id_domain' },
  { rule: 'create (v12): has a room_id → reject', versions: ['12'], event: (v) => ({ ...createEvent(v), room_id: '!create' }), expect: 'create_has_room_id' },
  { rule: 'create: unrecognised room_version → reject', versions: ALL, event: (v) => createEvent(v, { room_version: '999' }), expect: 'create_unknown_room_version' },
  { rule: 'create: no creator → reject (v1–10)', versions: range(1, 10), event: (v) => ({ ...createEvent(v), content: { room_version: v } }), expect: 'create_no_creator' },
  { rule: 'create: no creator needed (v11+) → allow', versions: ['11', '12'], event: (v) => ({ ...createEvent(v), content: { room_version: v } }), expect: 'allow' },
  { rule: 'create (v12): additional_creators not user IDs → reject', versions: ['12'], event: (v) => createEvent(v, { additional_creators: ['bob'] }), expect: 'create_invalid_additional_creators' },
  { rule: 'create (v12): valid additional_creators → allow', versions: ['12'], event: (v) => createEvent(v, { additional_creators: [BOB] }), expect: 'allow' },
  { rule: 'create: otherwise → allow', versions: ALL, event: (v) => createEvent(v), expect: 'allow' },
  // Room ID (v12) and missing create
  { rule: 'room_id (v12): not the create event ID → reject', versions: ['12'], event: (v) => ({ ...ev(v, 'm.room.message', ALICE, undefined, {}), room_id: '!other' }), expect: 'room_id_not_create_event' },
  { rule: 'auth events: no create event → reject', versions: range(1, 11), state: (v) => without(baseState(v), 'm.room.create'), event: (v) => ev(v, 'm.room.message', ALICE, undefined, {}), expect: 'missing_create_event' },
  // m.federate
  { rule: 'm.federate false and sender on another server → reject', versions: ALL, state: (v) => baseState(v, [], { 'm.federate': false }), event: (v) => ev(v, 'm.room.message', BOB, undefined, {}), expect: 'not_federated' },
  { rule: 'm.federate false and sender on the creator\'s server → allow', versions: ALL, state: (v) => baseState(v, [], { 'm.federate': false }), event: (v) => ev(v, 'm.room.message', ALICE, undefined, {}), expect: 'allow' },
  // Aliases (v1–5)
  { rule: 'aliases (v1–5): sender domain matches state_key → allow, even when not joined', versions: range(1, 5), event: (v) => ev(v, 'm.room.aliases', CAROL, 'c', { aliases: [] }), expect: 'allow' },
  { rule: 'aliases (v1–5): sender domain differs → reject', versions: range(1, 5), event: (v) => ev(v, 'm.room.aliases', CAROL, 'a', { aliases: [] }), expect: 'aliases_wrong_domain' },
  { rule: 'aliases (v1–5): no state_key → reject', versions: range(1, 5), event: (v) => ev(v, 'm.room.aliases', CAROL, undefined, {}), expect: 'aliases_no_state_key' },
  { rule: 'aliases (v6+): an ordinary state event, non-member → reject', versions: range(6, 12), event: (v) => ev(v, 'm.room.aliases', CAROL, 'c', { aliases: [] }), expect: 'sender_not_joined' },
  // Membership: fields
  { rule: 'member: no membership → reject', versions: ALL, event: (v) => ev(v, 'm.room.member', CAROL, CAROL, {}), expect: 'member_missing_fields' },
  // join
  { rule: 'join: first join of the creator right after create → allow', versions: range(1, 10), state: (v) => ({ create: createEvent(v), get: (t) => (t === 'm.room.create' ? createEvent(v) : undefined) }), event: (v) => ({ ...member(v, ALICE, ALICE, 'join'), prev_events: ['$create:a'] }), expect: 'allow' },
  { rule: 'join (v11+): first join of the create event\'s sender → allow', versions: ['11', '12'], state: (v) => ({ create: createEvent(v), get: (t) => (t === 'm.room.create' ? createEvent(v) : undefined) }), event: (v) => ({ ...member(v, ALICE, ALICE, 'join'), prev_events: [createEvent(v).event_id] }), expect: 'allow' },
  { rule: 'join: sender differs from state_key → reject', versions: ALL, event: (v) => member(v, BOB, CAROL, 'join'), expect: 'join_sender_not_target' },
  { rule: 'join: sender banned → reject', versions: ALL, state: (v) => baseState(v, [member(v, ALICE, CAROL, 'ban')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'join_banned' },
  { rule: 'join: invite rule, invited → allow', versions: ALL, state: (v) => baseState(v, [joinRule(v, 'invite'), member(v, ALICE, CAROL, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'allow' },
  { rule: 'join: invite rule, not invited → reject', versions: ALL, state: (v) => baseState(v, [joinRule(v, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'join_not_invited' },
  { rule: 'join (v7+): knock rule, invited → allow', versions: range(7, 12), state: (v) => baseState(v, [joinRule(v, 'knock'), member(v, ALICE, CAROL, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'allow' },
  { rule: 'join (v1–6): knock rule is unknown → reject', versions: range(1, 6), state: (v) => baseState(v, [joinRule(v, 'knock'), member(v, ALICE, CAROL, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'join_not_allowed' },
  { rule: 'join (v8+): restricted, authorised by a joined user who can invite → allow', versions: range(8, 12), state: (v) => baseState(v, [joinRule(v, 'restricted')]), event: (v) => ({ ...member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), signatures: { b: { 'ed25519:1': 'sig' } } }), expect: 'allow' },
  { rule: 'join (v8+): restricted, authorising user not joined → reject', versions: range(8, 12), state: (v) => baseState(v, [joinRule(v, 'restricted'), member(v, BOB, BOB, 'leave')]), event: (v) => ({ ...member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), signatures: { b: { 'ed25519:1': 'sig' } } }), expect: 'join_restricted_unauthorised' },
  { rule: 'join (v8+): restricted, no authorising user and not invited → reject', versions: range(8, 12), state: (v) => baseState(v, [joinRule(v, 'restricted')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'join_restricted_unauthorised' },
  { rule: 'join (v8+): restricted, already invited → allow', versions: range(8, 12), state: (v) => baseState(v, [joinRule(v, 'restricted'), member(v, ALICE, CAROL, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'allow' },
  { rule: 'join (v8+): join_authorised_via_users_server without that server\'s signature → reject', versions: range(8, 12), state: (v) => baseState(v, [joinRule(v, 'restricted')]), event: (v) => member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), expect: 'join_authorised_not_signed' },
  { rule: 'join (v1–7): restricted is unknown → reject', versions: range(1, 7), state: (v) => baseState(v, [joinRule(v, 'restricted')]), event: (v) => member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), expect: 'join_not_allowed' },
  { rule: 'join (v10+): knock_restricted, authorised → allow', versions: range(10, 12), state: (v) => baseState(v, [joinRule(v, 'knock_restricted')]), event: (v) => ({ ...member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), signatures: { b: { 'ed25519:1': 'sig' } } }), expect: 'allow' },
  { rule: 'join (v8–9): knock_restricted is unknown → reject', versions: range(8, 9), state: (v) => baseState(v, [joinRule(v, 'knock_restricted')]), event: (v) => ({ ...member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), signatures: { b: { 'ed25519:1': 'sig' } } }), expect: 'join_not_allowed' },
  { rule: 'join: public → allow', versions: ALL, event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'allow' },
  { rule: 'join: otherwise (private) → reject', versions: ALL, state: (v) => baseState(v, [joinRule(v, 'private')]), event: (v) => member(v, CAROL, CAROL, 'join'), expect: 'join_not_allowed' },
  // invite with third_party_invite
  { rule: 'invite/3pid: target banned → reject', versions: ALL, state: (v) => baseState(v, [member(v, ALICE, CAROL, 'ban'), tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(CAROL, 'tok') } }), expect: 'third_party_invite_target_banned' },
  { rule: 'invite/3pid: no signed → reject', versions: ALL, state: (v) => baseState(v, [tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: {} }), expect: 'third_party_invite_no_signed' },
  { rule: 'invite/3pid: signed lacks token → reject', versions: ALL, state: (v) => baseState(v, [tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: { mxid: CAROL } } }), expect: 'third_party_invite_signed_fields' },
  { rule: 'invite/3pid: mxid differs from state_key → reject', versions: ALL, state: (v) => baseState(v, [tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(BOB, 'tok') } }), expect: 'third_party_invite_mxid_mismatch' },
  { rule: 'invite/3pid: no m.room.third_party_invite for the token → reject', versions: ALL, event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(CAROL, 'tok') } }), expect: 'third_party_invite_missing' },
  { rule: 'invite/3pid: sender differs from the third-party invite\'s sender → reject', versions: ALL, state: (v) => baseState(v, [tpiEvent(v, BOB)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(CAROL, 'tok') } }), expect: 'third_party_invite_sender_mismatch' },
  { rule: 'invite/3pid: signature matches the public key → allow', versions: ALL, state: (v) => baseState(v, [tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(CAROL, 'tok') } }), expect: 'allow' },
  { rule: 'invite/3pid: no signature matches → reject', versions: ALL, state: (v) => baseState(v, [tpiEvent(v)]), event: (v) => member(v, ALICE, CAROL, 'invite', { third_party_invite: { signed: signedFor(CAROL, 'tok', new SigningKey('0', new Uint8Array(32).fill(9))) } }), expect: 'third_party_invite_bad_signature' },
  // invite
  { rule: 'invite: sender not joined → reject', versions: ALL, event: (v) => member(v, CAROL, '@dan:d', 'invite'), expect: 'invite_sender_not_joined' },
  { rule: 'invite: target already joined → reject', versions: ALL, event: (v) => member(v, ALICE, BOB, 'invite'), expect: 'invite_target_joined_or_banned' },
  { rule: 'invite: target banned → reject', versions: ALL, state: (v) => baseState(v, [member(v, ALICE, CAROL, 'ban')]), event: (v) => member(v, ALICE, CAROL, 'invite'), expect: 'invite_target_joined_or_banned' },
  { rule: 'invite: sender at the invite level → allow', versions: ALL, event: (v) => member(v, BOB, CAROL, 'invite'), expect: 'allow' },
  { rule: 'invite: sender below the invite level → reject', versions: ALL, state: (v) => baseState(v, [pl(v, plUsers(v, { invite: 75 }))]), event: (v) => member(v, BOB, CAROL, 'invite'), expect: 'invite_insufficient_power' },
  // leave
  { rule: 'leave: own leave while joined → allow', versions: ALL, event: (v) => member(v, BOB, BOB, 'leave'), expect: 'allow' },
  { rule: 'leave: own leave without membership → reject', versions: ALL, event: (v) => member(v, CAROL, CAROL, 'leave'), expect: 'leave_not_member' },
  { rule: 'leave (v7+): retracting a knock → allow', versions: range(7, 12), state: (v) => baseState(v, [member(v, CAROL, CAROL, 'knock')]), event: (v) => member(v, CAROL, CAROL, 'leave'), expect: 'allow' },
  { rule: 'leave (v1–6): knock is no membership to leave → reject', versions: range(1, 6), state: (v) => baseState(v, [member(v, CAROL, CAROL, 'knock')]), event: (v) => member(v, CAROL, CAROL, 'leave'), expect: 'leave_not_member' },
  { rule: 'kick: sender not joined → reject', versions: ALL, state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => member(v, '@dan:d', CAROL, 'leave'), expect: 'kick_sender_not_joined' },
  { rule: 'unban: sender below the ban level → reject', versions: ALL, state: (v) => baseState(v, [member(v, ALICE, CAROL, 'ban'), pl(v, plUsers(v, { ban: 75, kick: 0 }))]), event: (v) => member(v, BOB, CAROL, 'leave'), expect: 'unban_insufficient_power' },
  { rule: 'kick: at the kick level and above the target → allow', versions: ALL, state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => member(v, BOB, CAROL, 'leave'), expect: 'allow' },
  { rule: 'kick: target not below the sender → reject', versions: ALL, event: (v) => member(v, BOB, ALICE, 'leave'), expect: 'kick_insufficient_power' },
  // ban
  { rule: 'ban: sender not joined → reject', versions: ALL, event: (v) => member(v, CAROL, BOB, 'ban'), expect: 'ban_sender_not_joined' },
  { rule: 'ban: at the ban level and above the target → allow', versions: ALL, event: (v) => member(v, BOB, CAROL, 'ban'), expect: 'allow' },
  { rule: 'ban: target not below the sender → reject', versions: ALL, event: (v) => member(v, BOB, ALICE, 'ban'), expect: 'ban_insufficient_power' },
  // knock
  { rule: 'knock (v7+): join rule not knock → reject', versions: range(7, 12), event: (v) => member(v, CAROL, CAROL, 'knock'), expect: 'knock_not_allowed' },
  { rule: 'knock (v7+): sender differs from state_key → reject', versions: range(7, 12), state: (v) => baseState(v, [joinRule(v, 'knock')]), event: (v) => member(v, BOB, CAROL, 'knock'), expect: 'knock_sender_not_target' },
  { rule: 'knock (v7+): knock rule, not a member → allow', versions: range(7, 12), state: (v) => baseState(v, [joinRule(v, 'knock')]), event: (v) => member(v, CAROL, CAROL, 'knock'), expect: 'allow' },
  { rule: 'knock (v7+): already joined → reject', versions: range(7, 12), state: (v) => baseState(v, [joinRule(v, 'knock')]), event: (v) => member(v, BOB, BOB, 'knock'), expect: 'knock_already_member' },
  { rule: 'knock (v10+): knock_restricted → allow', versions: range(10, 12), state: (v) => baseState(v, [joinRule(v, 'knock_restricted')]), event: (v) => member(v, CAROL, CAROL, 'knock'), expect: 'allow' },
  { rule: 'knock (v7–9): knock_restricted → reject', versions: range(7, 9), state: (v) => baseState(v, [joinRule(v, 'knock_restricted')]), event: (v) => member(v, CAROL, CAROL, 'knock'), expect: 'knock_not_allowed' },
  { rule: 'knock (v1–6): unknown membership → reject', versions: range(1, 6), state: (v) => baseState(v, [joinRule(v, 'knock')]), event: (v) => member(v, CAROL, CAROL, 'knock'), expect: 'unknown_membership' },
  { rule: 'member: unknown membership → reject', versions: ALL, event: (v) => member(v, BOB, BOB, 'dance'), expect: 'unknown_membership' },
  // Sender must be joined
  { rule: 'sender not joined → reject', versions: ALL, event: (v) => ev(v, 'm.room.message', CAROL, undefined, {}), expect: 'sender_not_joined' },
  // m.room.third_party_invite
  { rule: 'third_party_invite: sender at the invite level → allow', versions: ALL, event: (v) => tpiEvent(v, BOB), expect: 'allow' },
  { rule: 'third_party_invite: sender below the invite level → reject', versions: ALL, state: (v) => baseState(v, [pl(v, plUsers(v, { invite: 75 }))]), event: (v) => tpiEvent(v, BOB), expect: 'third_party_invite_power' },
  // Required power level
  { rule: 'required power: state event below state_default → reject', versions: ALL, state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => ev(v, 'm.room.topic', CAROL, '', { topic: 'x' }), expect: 'insufficient_power' },
  { rule: 'required power: events entry met → allow', versions: ALL, state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join'), pl(v, plUsers(v, { events: { 'm.room.topic': 0 } }))]), event: (v) => ev(v, 'm.room.topic', CAROL, '', { topic: 'x' }), expect: 'allow' },
  { rule: 'required power: no power levels event, creator has 100 (v1–11)', versions: range(1, 11), state: (v) => without(baseState(v), 'm.room.power_levels'), event: (v) => ev(v, 'm.room.name', ALICE, '', { name: 'x' }), expect: 'allow' },
  { rule: 'required power: stringy power level (v1–9) counts', versions: range(1, 9), state: (v) => baseState(v, [pl(v, { users: { [ALICE]: 100, [BOB]: ' +050 ' } })]), event: (v) => ev(v, 'm.room.topic', BOB, '', {}), expect: 'allow' },
  // state_key naming another user
  { rule: 'state_key starting with @ that is not the sender → reject', versions: ALL, event: (v) => ev(v, 'm.custom', BOB, CAROL, {}), expect: 'state_key_other_user' },
  { rule: 'state_key that is the sender → allow', versions: ALL, event: (v) => ev(v, 'm.custom', BOB, BOB, {}), expect: 'allow' },
  // Power levels
  { rule: 'power levels (v10+): level not an integer → reject', versions: range(10, 12), event: (v) => pl(v, plUsers(v, { ban: '50' })), expect: 'power_levels_not_integer' },
  { rule: 'power levels (v10+): events value not an integer → reject', versions: range(10, 12), event: (v) => pl(v, plUsers(v, { events: { 'm.room.name': '50' } })), expect: 'power_levels_not_integer' },
  { rule: 'power levels: users key not a user ID → reject', versions: ALL, event: (v) => pl(v, { users: { ...plUsers(v).users, bob: 10 } }), expect: 'power_levels_invalid_users' },
  { rule: 'power levels (v1–9): users value an integer string → allow', versions: range(1, 9), event: (v) => pl(v, { users: { [ALICE]: '100', [BOB]: '50' } }), expect: 'allow' },
  { rule: 'power levels (v10+): users value a string → reject', versions: ['10', '11'], event: (v) => pl(v, { users: { [ALICE]: 100, [BOB]: '50' } }), expect: 'power_levels_invalid_users' },
  { rule: 'power levels (v12): users names a creator → reject', versions: ['12'], event: (v) => pl(v, { users: { [ALICE]: 100 } }), expect: 'power_levels_names_creator' },
  { rule: 'power levels: no previous power levels → allow', versions: ALL, state: (v) => without(baseState(v), 'm.room.power_levels'), event: (v) => pl(v, { users: { [BOB]: 100 } }), expect: 'allow' },
  { rule: 'power levels: changing a level to above the sender → reject', versions: ALL, event: (v) => ({ ...pl(v, plUsers(v, { kick: 60 })), sender: BOB }), expect: 'power_levels_change_above_sender' },
  { rule: 'power levels: changing a level the sender is above → allow', versions: ALL, event: (v) => ({ ...pl(v, plUsers(v, { kick: 40 })), sender: BOB }), expect: 'allow' },
  { rule: 'power levels: removing an events entry above the sender → reject', versions: ALL, state: (v) => baseState(v, [pl(v, plUsers(v, { events: { 'm.room.name': 75 } }))]), event: (v) => ({ ...pl(v, plUsers(v)), sender: BOB }), expect: 'power_levels_change_above_sender' },
  { rule: 'power levels: adding an events entry above the sender → reject', versions: ALL, event: (v) => ({ ...pl(v, plUsers(v, { events: { 'm.room.name': 75 } })), sender: BOB }), expect: 'power_levels_change_above_sender' },
  { rule: 'power levels (v6+): adding a notifications entry above the sender → reject', versions: range(6, 12), event: (v) => ({ ...pl(v, plUsers(v, { notifications: { room: 75 } })), sender: BOB }), expect: 'power_levels_change_above_sender' },
  { rule: 'power levels (v1–5): notifications are not checked → allow', versions: range(1, 5), event: (v) => ({ ...pl(v, plUsers(v, { notifications: { room: 75 } })), sender: BOB }), expect: 'allow' },
  { rule: 'power levels: changing a user at the sender\'s level → reject', versions: ALL, state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join'), pl(v, { users: { ...plUsers(v).users, [CAROL]: 50 } })]), event: (v) => ({ ...pl(v, { users: { ...plUsers(v).users, [CAROL]: 0 } }), sender: BOB }), expect: 'power_levels_demote_peer' },
  { rule: 'power levels: lowering one\'s own level → allow', versions: ALL, event: (v) => ({ ...pl(v, { users: { ...plUsers(v).users, [BOB]: 10 } }), sender: BOB }), expect: 'allow' },
  { rule: 'power levels: raising a user above the sender → reject', versions: ALL, event: (v) => ({ ...pl(v, { users: { ...plUsers(v).users, [CAROL]: 60 } }), sender: BOB }), expect: 'power_levels_change_above_sender' },
  { rule: 'power levels: raising a user to the sender\'s level → allow', versions: ALL, event: (v) => ({ ...pl(v, { users: { ...plUsers(v).users, [CAROL]: 50 } }), sender: BOB }), expect: 'allow' },
  // Redactions
  { rule: 'redaction (v1–2): below redact level, same event ID domain → allow', versions: range(1, 2), state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => ({ ...ev(v, 'm.room.redaction', CAROL, undefined, {}), redacts: '$target:a' }), expect: 'allow' },
  { rule: 'redaction (v1–2): below redact level, other domain → reject', versions: range(1, 2), state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => ({ ...ev(v, 'm.room.redaction', CAROL, undefined, {}), redacts: '$target:elsewhere' }), expect: 'redaction_not_allowed' },
  { rule: 'redaction (v3+): the auth rules do not consider the redact level → allow', versions: range(3, 12), state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => ({ ...ev(v, 'm.room.redaction', CAROL, undefined, { redacts: '$t' }), redacts: '$target:elsewhere' }), expect: 'allow' },
  // v12 creators
  { rule: 'creators (v12): additional creator has infinite power → allow', versions: ['12'], state: (v) => baseState(v, [member(v, CAROL, CAROL, 'join'), pl(v, { users: { [BOB]: 50 }, state_default: 1000000 })], { additional_creators: [CAROL] }), event: (v) => ev(v, 'm.room.name', CAROL, '', {}), expect: 'allow' },
  { rule: 'otherwise → allow', versions: ALL, event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'hi' }), expect: 'allow' },
];

describe('authorizeEvent', () => {
  const rows = cases.flatMap((c) => c.versions.map((v) => [c.rule, v, c] as const));
  it.each(rows)('%s [room v%s]', (_rule, version, c) => {
    const rules = roomVersionRules(version);
    const result = authorizeEvent(c.event(version), (c.state ?? baseState)(version), rules);
    if (c.expect === 'allow') expect(result).toEqual({ allowed: true });
    else {
      expect(result.allowed).toBe(false);
      if (!result.allowed) {
        expect(result.reason.code).toBe(c.expect);
        expect(result.reason.message).toContain(`(auth rule ${result.reason.rule})`);
      }
    }
  });

  it('numbers rules as each version\'s spec does', () => {
    const join = (v: string) => authorizeEvent(member(v, CAROL, CAROL, 'join'), baseState(v, [joinRule(v, 'private')]), roomVersionRules(v));
    expect(join('1')).toMatchObject({ reason: { rule: '5.2.6' } });
    expect(join('6')).toMatchObject({ reason: { rule: '4.2.6' } });
    expect(join('8')).toMatchObject({ reason: { rule: '4.3.7' } });
    expect(join('12')).toMatchObject({ reason: { rule: '5.3.7' } });
  });
});

describe('checkAuthEventsList', () => {
  const v = '10';
  const rules = roomVersionRules(v);
  const create = createEvent(v);
  const alice = { ...member(v, ALICE, ALICE, 'join'), auth_events: [create.event_id] };
  const power = { ...pl(v, plUsers(v)), auth_events: [create.event_id, alice.event_id] };
  const other = { ...member(v, ALICE, ALICE, 'join'), room_id: '!other:a' };
  const byId = new Map([create, alice, power, other].map((e) => [e.event_id, e]));
  const lookup = (id: string) => byId.get(id);
  const msg = (auth: string[]) => ({ ...ev(v, 'm.room.message', ALICE, undefined, {}), auth_events: auth });

  it('allows the selected auth events', () => expect(checkAuthEventsList(msg([create.event_id, power.event_id, alice.event_id]), lookup, rules)).toEqual({ allowed: true }));
  it('rule 2.1: duplicate (type, state_key) → reject', () => expect(checkAuthEventsList(msg([create.event_id, alice.event_id, other.event_id]), lookup, rules)).toMatchObject({ reason: { code: 'auth_events_duplicate', rule: '2.1' } }));
  it('rule 2.2: an entry the selection would not pick → reject', () => expect(checkAuthEventsList(msg([create.event_id, member(v, BOB, BOB, 'join').event_id]), (id) => byId.get(id) ?? member(v, BOB, BOB, 'join'), rules)).toMatchObject({ reason: { code: 'auth_events_unexpected', rule: '2.2' } }));
  it('rule 2.3: a rejected entry → reject', () => expect(checkAuthEventsList(msg([create.event_id, power.event_id]), lookup, rules, (id) => id === power.event_id)).toMatchObject({ reason: { code: 'auth_event_rejected', rule: '2.3' } }));
  it('rule 2.4: no create event → reject', () => expect(checkAuthEventsList(msg([power.event_id]), lookup, rules)).toMatchObject({ reason: { code: 'missing_create_event', rule: '2.4' } }));
  it('rule 2.5: an entry from another room → reject', () => expect(checkAuthEventsList(msg([create.event_id, other.event_id]), lookup, rules)).toMatchObject({ reason: { code: 'auth_event_other_room', rule: '2.5' } }));

  it('v12: the create event must not be selected, and room_id must name an accepted create event', () => {
    const r12 = roomVersionRules('12');
    const c12 = createEvent('12');
    const m = { ...ev('12', 'm.room.message', ALICE, undefined, {}), auth_events: [c12.event_id] };
    const look = (id: string) => (id === c12.event_id ? c12 : undefined);
    expect(checkAuthEventsList(m, look, r12)).toMatchObject({ reason: { code: 'auth_events_unexpected', rule: '3.2' } });
    expect(checkAuthEventsList({ ...m, auth_events: [] }, look, r12)).toEqual({ allowed: true });
    expect(checkAuthEventsList({ ...m, auth_events: [] }, look, r12, () => true)).toMatchObject({ reason: { code: 'room_id_not_create_event', rule: '2' } });
  });
});

describe('defect 12: authorizeEvent itself refuses auth state of another room (every caller gets rule 2.5)', () => {
  it.each(ALL)('v%s: power levels of another room → reject', (v) => {
    const foreignPl = { ...ev(v, 'm.room.power_levels', ALICE, '', { users: { [CAROL]: 100 }, events_default: 0 }), room_id: '!other:b' };
    const state = baseState(v, [foreignPl]);
    const msg = ev(v, 'm.room.message', BOB, undefined, {});
    expect(authorizeEvent(msg, state, roomVersionRules(v))).toMatchObject({ allowed: false, reason: { code: 'auth_event_other_room' } });
  });

  it.each(range(1, 11))('v%s: a create event of another room → reject', (v) => {
    const state = baseState(v);
    const foreignCreate = { ...state.create!, room_id: '!other:b' };
    const msg = ev(v, 'm.room.message', BOB, undefined, {});
    expect(authorizeEvent(msg, { ...state, create: foreignCreate }, roomVersionRules(v))).toMatchObject({ allowed: false, reason: { code: 'auth_event_other_room', rule: '2.5' } });
  });

  it('a membership of another room does not let its sender in', () => {
    const v = '10';
    const carolElsewhere = { ...ev(v, 'm.room.member', CAROL, CAROL, { membership: 'join' }), room_id: '!other:b' };
    const state = baseState(v, [carolElsewhere]);
    expect(authorizeEvent(ev(v, 'm.room.message', CAROL, undefined, {}), state, roomVersionRules(v))).toMatchObject({ allowed: false, reason: { code: 'auth_event_other_room' } });
  });

  it('state of the room itself is still allowed', () => {
    expect(authorizeEvent(ev('10', 'm.room.message', BOB, undefined, {}), baseState('10'), roomVersionRules('10'))).toEqual({ allowed: true });
  });
});
