// Properties of the room-state engine under whatever a peer sends: no event of another room ever enters a room's
// state, the auth state an event is allowed by, or a replayed snapshot; and the results do not depend on order.
import fc from 'fast-check';
import { roomVersionRules } from '@fedgate/protocol';
import { authTypesForEvent } from './auth-types';
import { authorizeEvent, roomOfEvent, type AuthState } from './authorize';
import { stateMapKey, toRoomEvent, type RoomEvent } from './event';
import { replayRoom } from './replay';
import { resolveState } from './resolve';
import { ForeignEventError } from './room-guard';

const ADMIN = '@admin:a';
const EVIL = '@mallory:evil';
const USERS = [ADMIN, EVIL, '@u:b'];
const TYPES = ['m.room.topic', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member', 'm.room.message'] as const;

/** One room's base: create, the admin's join, power levels, public join rules, the attacker's join. */
function baseRoom(version: string, roomId: string, prefix: string): Array<Record<string, unknown>> {
  const v12 = version === '12';
  const createId = v12 ? '$' + roomId.slice(1) : `$${prefix}create`;
  const auth = v12 ? [] : [createId];
  return [
    { event_id: createId, room_id: v12 ? undefined : roomId, sender: ADMIN, type: 'm.room.create', state_key: '', content: { creator: ADMIN, room_version: version }, prev_events: [], auth_events: [], origin_server_ts: 0 },
    { event_id: `$${prefix}admin`, room_id: roomId, sender: ADMIN, type: 'm.room.member', state_key: ADMIN, content: { membership: 'join' }, prev_events: [createId], auth_events: auth, origin_server_ts: 1 },
    { event_id: `$${prefix}pl`, room_id: roomId, sender: ADMIN, type: 'm.room.power_levels', state_key: '', content: { users: v12 ? {} : { [ADMIN]: 100 }, state_default: 50 }, prev_events: [`$${prefix}admin`], auth_events: [...auth, `$${prefix}admin`], origin_server_ts: 2 },
    { event_id: `$${prefix}jr`, room_id: roomId, sender: ADMIN, type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' }, prev_events: [`$${prefix}pl`], auth_events: [...auth, `$${prefix}admin`, `$${prefix}pl`], origin_server_ts: 3 },
    { event_id: `$${prefix}evil`, room_id: roomId, sender: EVIL, type: 'm.room.member', state_key: EVIL, content: { membership: 'join' }, prev_events: [`$${prefix}jr`], auth_events: [...auth, `$${prefix}pl`, `$${prefix}jr`], origin_server_ts: 4 },
  ];
}

/** A peer's event: any type, either room, prev and auth events picked from everything known (both rooms). */
const attackEvent = (known: string[], roomIds: string[]) =>
  fc.record({
    type: fc.constantFrom(...TYPES),
    sender: fc.constantFrom(...USERS),
    roomId: fc.constantFrom(...roomIds),
    prev: fc.subarray(known, { minLength: 1, maxLength: 3 }),
    auth: fc.subarray(known, { maxLength: 5 }),
    /** Take the auth events an honest server would select (from the claimed room's state, or the other room's). */
    selectAuthFrom: fc.constantFrom('claimed', 'other', 'random'),
    bossy: fc.boolean(),
  });

function build(version: string) {
  const v12 = version === '12';
  const roomA = v12 ? '!aroom' : '!a:a';
  const roomB = v12 ? '!broom' : '!b:a';
  const baseA = baseRoom(version, roomA, 'a');
  const baseB = baseRoom(version, roomB, 'b');
  const known = [...baseA, ...baseB].map((e) => e.event_id as string);
  const stateOf = (base: Array<Record<string, unknown>>) => new Map(base.map((e) => [stateMapKey(e.type as string, e.state_key as string), e.event_id as string]));
  const states = new Map([[roomA, stateOf(baseA)], [roomB, stateOf(baseB)]]);
  const select = (roomId: string, type: string, sender: string) =>
    authTypesForEvent({ type, sender, state_key: type === 'm.room.message' ? undefined : type === 'm.room.member' ? sender : '', content: type === 'm.room.member' ? { membership: 'join' } : {} }, roomVersionRules(version))
      .map((r) => states.get(roomId)!.get(stateMapKey(r.type, r.state_key)))
      .filter((id): id is string => id !== undefined);
  const attacks = fc.array(attackEvent(known, [roomA, roomB]), { minLength: 1, maxLength: 6 }).map((specs) =>
    specs.map((s, i) => ({
      event_id: `$attack${i}`,
      room_id: s.roomId,
      sender: s.sender,
      type: s.type,
      ...(s.type === 'm.room.message' ? {} : { state_key: s.type === 'm.room.member' ? s.sender : '' }),
      content: s.type === 'm.room.power_levels' ? { users: { [EVIL]: 100, ...(v12 ? {} : { [ADMIN]: 100 }) } } : s.type === 'm.room.member' ? { membership: 'join' } : s.type === 'm.room.join_rules' ? { join_rule: s.bossy ? 'invite' : 'public' } : { topic: 'x', body: 'x' },
      // Each attack may also build on the attacks before it.
      prev_events: i > 0 && s.bossy ? [...s.prev, `$attack${i - 1}`] : s.prev,
      auth_events: s.selectAuthFrom === 'random' ? s.auth : select(s.selectAuthFrom === 'claimed' ? s.roomId : s.roomId === roomA ? roomB : roomA, s.type, s.sender),
      origin_server_ts: 10 + i,
    })),
  );
  return { roomA, roomB, baseA, baseB, attacks };
}

describe.each(['2', '10', '12'])('room integrity properties, room v%s', (version) => {
  const { roomA, baseA, baseB, attacks } = build(version);

  it('replaying a room with whatever a peer sent (events of another room among it) never puts another room event in its state', () => {
    fc.assert(
      fc.property(attacks, (sent) => {
        // Room B's events are "held" (given to the replay too), as a server holding both rooms would have them.
        const result = replayRoom([...baseA, ...baseB.slice(1), ...sent]);
        const byId = new Map([...baseA, ...baseB, ...sent].map((e) => [e.event_id as string, toRoomEvent(e)]));
        for (const entry of result.state) expect(roomOfEvent(byId.get(entry.event_id)!)).toBe(roomA);
      }),
      { numRuns: 120 },
    );
  });

  it('state resolution either refuses (ForeignEventError) or returns only events of the room, never a mix', () => {
    const events = new Map([...baseA, ...baseB].map((e) => [e.event_id as string, toRoomEvent(e)]));
    const lookup = (id: string) => events.get(id);
    const stateOf = (base: Array<Record<string, unknown>>) => new Map(base.map((e) => [stateMapKey(e.type as string, e.state_key as string), e.event_id as string]));
    const stateA = stateOf(baseA);
    const keys = [...stateA.keys()];
    const foreignIds = baseB.map((e) => e.event_id as string);
    const poisoned = fc.array(fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...foreignIds)), { maxLength: 3 }).map((swaps) => {
      const s = new Map(stateA);
      for (const [k, id] of swaps) s.set(k, id);
      return { s, clean: swaps.length === 0 };
    });
    fc.assert(
      fc.property(fc.array(poisoned, { minLength: 1, maxLength: 3 }), (sets) => {
        const clean = sets.every((x) => x.clean);
        let resolved: Map<string, string> | undefined;
        try {
          resolved = resolveState(sets.map((x) => x.s), { rules: roomVersionRules(version), lookup, roomId: roomA });
        } catch (err) {
          expect(err).toBeInstanceOf(ForeignEventError);
          expect(clean).toBe(false);
          return;
        }
        expect(clean).toBe(true);
        for (const id of resolved.values()) expect(roomOfEvent(events.get(id)!)).toBe(roomA);
      }),
      { numRuns: 150 },
    );
  });

  it('authorizeEvent never allows an event on auth state holding another room event', () => {
    const all = new Map([...baseA, ...baseB].map((e) => [e.event_id as string, toRoomEvent(e)]));
    const aEvents = baseA.map((e) => all.get(e.event_id as string)!);
    const bEvents = baseB.map((e) => all.get(e.event_id as string)!);
    fc.assert(
      fc.property(fc.subarray(bEvents, { minLength: 1 }), fc.constantFrom(...TYPES), fc.constantFrom(...USERS), (foreign, type, sender) => {
        const byKey = new Map<string, RoomEvent>();
        for (const e of [...aEvents, ...foreign]) byKey.set(stateMapKey(e.type, e.state_key!), e);
        const state: AuthState = { create: byKey.get(stateMapKey('m.room.create', '')) ?? all.get(baseA[0].event_id as string), get: (t, k) => byKey.get(stateMapKey(t, k)) };
        const event = toRoomEvent({ event_id: '$probe', room_id: roomA, sender, type, ...(type === 'm.room.message' ? {} : { state_key: type === 'm.room.member' ? sender : '' }), content: type === 'm.room.member' ? { membership: 'join' } : {}, prev_events: ['$aevil'], auth_events: [] });
        const verdict = authorizeEvent(event, state, roomVersionRules(version));
        if (!verdict.allowed) return;
        const used = authTypesForEvent(event, roomVersionRules(version)).map((r) => state.get(r.type, r.state_key)).filter((e): e is RoomEvent => e !== undefined);
        for (const e of [state.create!, ...used]) expect(roomOfEvent(e)).toBe(roomA);
      }),
      { numRuns: 150 },
    );
  });

  it('replay and resolution are deterministic under reordering (input order, entry order within state sets)', () => {
    const sorted = (entries: Iterable<[string, string]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    fc.assert(
      fc.property(
        attacks.chain((sent) => fc.tuple(fc.constant(sent), fc.shuffledSubarray([...baseA, ...sent], { minLength: baseA.length + sent.length }))),
        ([sent, shuffled]) => {
          const inOrder = replayRoom([...baseA, ...sent]);
          const reordered = replayRoom(shuffled);
          expect(reordered.state).toEqual(inOrder.state);
          expect(reordered.forwardExtremities).toEqual(inOrder.forwardExtremities);
          const events = new Map([...baseA, ...sent].map((e) => [e.event_id as string, toRoomEvent(e)]));
          const opts = { rules: roomVersionRules(version), lookup: (id: string) => events.get(id), roomId: roomA };
          const sets = [new Map(inOrder.state.map((s) => [stateMapKey(s.type, s.state_key), s.event_id] as [string, string])), new Map(baseA.map((e) => [stateMapKey(e.type as string, e.state_key as string), e.event_id as string] as [string, string]))];
          const reversed = sets.map((s) => new Map([...s].reverse())).reverse();
          expect(sorted(resolveState(reversed, opts))).toEqual(sorted(resolveState(sets, opts)));
        },
      ),
      { numRuns: 100 },
    );
  });
});
