// Soft failure: an event that passes auth at its own state but not against the room's current state.
import { roomVersionRules } from '@fedgate/protocol';
import { authorizeEvent, authStateFromMap } from './authorize';
import { stateMapKey, toRoomEvent, type RoomEvent, type StateMap } from './event';
import { checkSoftFail } from './soft-fail';

const ALICE = '@alice:a';
const BOB = '@bob:b';
const CAROL = '@carol:c';
const ALL = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];
const range = (from: number, to: number) => ALL.slice(from - 1, to);

const roomId = (v: string) => (v === '12' ? '!create' : '!room:a');
const known = new Map<string, RoomEvent>();
const lookup = (id: string) => known.get(id);
const remember = (e: RoomEvent) => (known.set(e.event_id, e), e);

let counter = 0;
function ev(v: string, type: string, sender: string, stateKey: string | undefined, content: Record<string, unknown>, extra: Record<string, unknown> = {}): RoomEvent {
  counter++;
  return remember(toRoomEvent({ event_id: `$e${counter}:a`, room_id: roomId(v), sender, type, state_key: stateKey, content, prev_events: ['$prev:a'], auth_events: [], origin_server_ts: counter, ...extra }));
}

function createEvent(v: string): RoomEvent {
  const content = v === '12' ? { room_version: v } : { creator: ALICE, room_version: v };
  return remember(toRoomEvent({ event_id: v === '12' ? '$create' : '$create:a', room_id: v === '12' ? undefined : roomId(v), sender: ALICE, type: 'm.room.create', state_key: '', content }));
}

const member = (v: string, sender: string, target: string, membership: string, extra: Record<string, unknown> = {}) => ev(v, 'm.room.member', sender, target, { membership, ...extra });
const joinRule = (v: string, rule: string) => ev(v, 'm.room.join_rules', ALICE, '', { join_rule: rule });
/** Power levels: Alice 100 below v12 (a v12 creator is not listed), Bob 50 unless overridden. */
const pl = (v: string, users: Record<string, number> = {}, extra: Record<string, unknown> = {}) =>
  ev(v, 'm.room.power_levels', ALICE, '', { users: { ...(v === '12' ? {} : { [ALICE]: 100 }), [BOB]: 50, ...users }, ...extra });

/** Alice created and joined, Bob joined with power 50, public room; `overrides` replace entries by (type, state_key). */
function stateOf(v: string, overrides: RoomEvent[] = []): Map<string, string> {
  const state = new Map<string, string>();
  for (const e of [createEvent(v), member(v, ALICE, ALICE, 'join'), pl(v), joinRule(v, 'public'), member(v, BOB, BOB, 'join'), ...overrides]) {
    state.set(stateMapKey(e.type, e.state_key!), e.event_id);
  }
  return state;
}

const without = (state: Map<string, string>, type: string, stateKey = '') => (state.delete(stateMapKey(type, stateKey)), state);

interface Case {
  name: string;
  versions: string[];
  /** The state before the event, by its own prev events; the base room when absent. */
  own?: (v: string) => StateMap;
  current: (v: string) => StateMap;
  event: (v: string) => RoomEvent;
  /** The verdict at the event's own state (default: allowed). */
  atOwnState?: string;
  /** The verdict against the current state: 'allow' (not soft failed) or the rejection code. */
  soft: string | ((v: string) => string);
}

const cases: Case[] = [
  // Soft failed: allowed where the event was sent, not any more.
  { name: 'message from a user banned in the current state', versions: ALL, current: (v) => stateOf(v, [member(v, ALICE, BOB, 'ban')]), event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'evading' }), soft: 'sender_not_joined' },
  { name: 'message from a user kicked in the current state', versions: ALL, current: (v) => stateOf(v, [member(v, ALICE, BOB, 'leave')]), event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'late' }), soft: 'sender_not_joined' },
  { name: 'state event from a user demoted in the current state', versions: ALL, current: (v) => stateOf(v, [pl(v, { [BOB]: 0 })]), event: (v) => ev(v, 'm.room.topic', BOB, '', { topic: 't' }), soft: 'insufficient_power' },
  { name: 'join after the join rule became invite-only', versions: ALL, current: (v) => stateOf(v, [joinRule(v, 'invite')]), event: (v) => member(v, CAROL, CAROL, 'join'), soft: 'join_not_invited' },
  { name: 'join by a user banned in the current state', versions: ALL, current: (v) => stateOf(v, [member(v, ALICE, CAROL, 'ban')]), event: (v) => member(v, CAROL, CAROL, 'join'), soft: 'join_banned' },
  { name: 'ban by a user whose ban power was lowered', versions: ALL, current: (v) => stateOf(v, [pl(v, {}, { ban: 75 })]), event: (v) => member(v, BOB, CAROL, 'ban'), soft: 'ban_insufficient_power' },
  { name: 'invite by a user who has left since', versions: ALL, current: (v) => stateOf(v, [member(v, BOB, BOB, 'leave')]), event: (v) => member(v, BOB, CAROL, 'invite'), soft: 'invite_sender_not_joined' },
  {
    name: 'restricted join (v8+) authorised by a user who has left since',
    versions: range(8, 12),
    own: (v) => stateOf(v, [joinRule(v, 'restricted')]),
    current: (v) => stateOf(v, [joinRule(v, 'restricted'), member(v, BOB, BOB, 'leave')]),
    event: (v) => ({ ...member(v, CAROL, CAROL, 'join', { join_authorised_via_users_server: BOB }), signatures: { b: { 'ed25519:1': 'sig' } } }),
    soft: 'join_restricted_unauthorised',
  },
  // Room version differences.
  {
    name: 'creator demoted in the current power levels: soft failed before v12, a v12 creator keeps infinite power',
    versions: ALL,
    current: (v) => stateOf(v, [pl(v, v === '12' ? {} : { [ALICE]: 0 }, v === '12' ? { state_default: 1_000_000 } : {})]),
    event: (v) => ev(v, 'm.room.name', ALICE, '', { name: 'n' }),
    soft: (v) => (v === '12' ? 'allow' : 'insufficient_power'),
  },
  {
    name: 'no create event under its key in the current state: v12 finds it through room_id',
    versions: ALL,
    current: (v) => without(stateOf(v), 'm.room.create'),
    event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'hi' }),
    soft: (v) => (v === '12' ? 'allow' : 'missing_create_event'),
  },
  // Not soft failed.
  { name: 'message from a user joined in both states', versions: ALL, current: (v) => stateOf(v, [ev(v, 'm.room.name', ALICE, '', { name: 'renamed' })]), event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'hi' }), soft: 'allow' },
  { name: 'state event from a user promoted since', versions: ALL, current: (v) => stateOf(v, [pl(v, { [BOB]: 90 }, { state_default: 75 })]), event: (v) => ev(v, 'm.room.topic', BOB, '', { topic: 't' }), soft: 'allow' },
  { name: 'changes outside the event\'s auth selection do not count', versions: ALL, current: (v) => stateOf(v, [member(v, ALICE, CAROL, 'ban'), ev(v, 'm.room.history_visibility', ALICE, '', { history_visibility: 'joined' })]), event: (v) => ev(v, 'm.room.message', BOB, undefined, { body: 'hi' }), soft: 'allow' },
  // Soft failure only looks at the current state: an event rejected at its own state can pass here.
  { name: 'message from a user not joined at its own state but joined now', versions: ALL, own: (v) => stateOf(v, [member(v, CAROL, CAROL, 'leave')]), current: (v) => stateOf(v, [member(v, CAROL, CAROL, 'join')]), event: (v) => ev(v, 'm.room.message', CAROL, undefined, { body: 'hi' }), atOwnState: 'sender_not_joined', soft: 'allow' },
];

const verdict = (result: ReturnType<typeof checkSoftFail>) => (result.allowed ? 'allow' : result.reason.code);

describe('checkSoftFail', () => {
  const rows = cases.flatMap((c) => c.versions.map((v) => [c.name, v, c] as const));
  it.each(rows)('%s [room v%s]', (_name, v, c) => {
    const rules = roomVersionRules(v);
    const event = c.event(v);
    const own = (c.own ?? stateOf)(v);
    expect(verdict(authorizeEvent(event, authStateFromMap(own, lookup, event.room_id), rules))).toBe(c.atOwnState ?? 'allow');
    const expected = typeof c.soft === 'function' ? c.soft(v) : c.soft;
    expect(verdict(checkSoftFail(event, c.current(v), lookup, rules))).toBe(expected);
  });

  it('reads only the current state entries the auth events selection names', () => {
    const v = '10';
    const current = stateOf(v, [member(v, ALICE, CAROL, 'ban'), ev(v, 'm.room.name', ALICE, '', { name: 'n' })]);
    const read: string[] = [];
    const event = ev(v, 'm.room.message', BOB, undefined, { body: 'hi' });
    checkSoftFail(event, current, (id) => (read.push(id), lookup(id)), roomVersionRules(v));
    const keyOf = new Map([...current].map(([key, id]) => [id, key]));
    const readKeys = read.map((id) => keyOf.get(id));
    expect(new Set(readKeys)).toEqual(new Set([stateMapKey('m.room.create', ''), stateMapKey('m.room.power_levels', ''), stateMapKey('m.room.member', BOB)]));
  });

  it('passes the auth ports through (third-party invite verification)', () => {
    const v = '10';
    const tpi = ev(v, 'm.room.third_party_invite', BOB, 'tok', { public_key: 'k' });
    const current = stateOf(v, [tpi]);
    const signed = { mxid: CAROL, token: 'tok', signatures: {} };
    const invite = member(v, BOB, CAROL, 'invite', { third_party_invite: { signed } });
    const seen: unknown[] = [];
    const result = checkSoftFail(invite, current, lookup, roomVersionRules(v), { verifyThirdPartyInvite: (s, keys) => (seen.push([s, keys]), true) });
    expect(result).toEqual({ allowed: true });
    expect(seen).toEqual([[signed, ['k']]]);
  });
});
