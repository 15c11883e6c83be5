// Properties of state resolution that hold for any input: order of state sets does not matter; one set resolves to itself.
import fc from 'fast-check';
import { roomVersionRules } from '@fedgate/protocol';
import { stateMapKey, toRoomEvent, type RoomEvent } from './event';
import { resolveState } from './resolve';

const ADMIN = '@admin:a';
const USERS = ['@u0:b', '@u1:c', '@u2:d'];

/** A small room plus a pool of competing state events (topics, kicks, rejoins, power-level changes, join rules). */
function room(version: string) {
  const v12 = version === '12';
  const roomId = v12 ? '!create' : '!room:a';
  const events = new Map<string, RoomEvent>();
  const base = new Map<string, string>();
  const add = (raw: Record<string, unknown>, inBase = false) => {
    const e = toRoomEvent({ room_id: roomId, prev_events: [], ...raw });
    events.set(e.event_id, e);
    if (inBase) base.set(stateMapKey(e.type, e.state_key!), e.event_id);
    return e;
  };
  const create = v12 ? [] : ['$create'];
  add({ event_id: '$create', room_id: v12 ? undefined : roomId, sender: ADMIN, type: 'm.room.create', state_key: '', content: { creator: ADMIN, room_version: version }, auth_events: [], origin_server_ts: 0 }, true);
  add({ event_id: '$admin', sender: ADMIN, type: 'm.room.member', state_key: ADMIN, content: { membership: 'join' }, auth_events: create, origin_server_ts: 1 }, true);
  const users = (extra: Record<string, number>) => (v12 ? extra : { [ADMIN]: 100, ...extra });
  add({ event_id: '$pl', sender: ADMIN, type: 'm.room.power_levels', state_key: '', content: { users: users({ [USERS[0]]: 50 }) }, auth_events: [...create, '$admin'], origin_server_ts: 2 }, true);
  add({ event_id: '$jr', sender: ADMIN, type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' }, auth_events: [...create, '$admin', '$pl'], origin_server_ts: 3 }, true);
  USERS.forEach((u, i) => add({ event_id: `$join${i}`, sender: u, type: 'm.room.member', state_key: u, content: { membership: 'join' }, auth_events: [...create, '$pl', '$jr'], origin_server_ts: 4 + i }, true));
  const pool: RoomEvent[] = [];
  let ts = 10;
  for (const [i, u] of USERS.entries()) {
    pool.push(add({ event_id: `$topic${i}`, sender: u, type: 'm.room.topic', state_key: '', content: { topic: u }, auth_events: [...create, '$pl', `$join${i}`], origin_server_ts: ts++ }));
    pool.push(add({ event_id: `$kick${i}`, sender: i === 0 ? ADMIN : USERS[0], type: 'm.room.member', state_key: u, content: { membership: i === 0 ? 'ban' : 'leave' }, auth_events: [...create, '$pl', i === 0 ? '$admin' : '$join0', `$join${i}`], origin_server_ts: ts++ }));
    pool.push(add({ event_id: `$rename${i}`, sender: u, type: 'm.room.member', state_key: u, content: { membership: 'join', displayname: 'x' }, auth_events: [...create, '$pl', '$jr', `$join${i}`], origin_server_ts: ts++ }));
  }
  pool.push(add({ event_id: '$pl2', sender: ADMIN, type: 'm.room.power_levels', state_key: '', content: { users: users({ [USERS[1]]: 50 }) }, auth_events: [...create, '$admin', '$pl'], origin_server_ts: ts++ }));
  pool.push(add({ event_id: '$pl3', sender: USERS[0], type: 'm.room.power_levels', state_key: '', content: { users: users({ [USERS[0]]: 50, [USERS[2]]: 50 }) }, auth_events: [...create, '$join0', '$pl'], origin_server_ts: ts++ }));
  pool.push(add({ event_id: '$jr2', sender: ADMIN, type: 'm.room.join_rules', state_key: '', content: { join_rule: 'invite' }, auth_events: [...create, '$admin', '$pl'], origin_server_ts: ts++ }));
  pool.push(add({ event_id: '$name', sender: ADMIN, type: 'm.room.name', state_key: '', content: { name: 'n' }, auth_events: [...create, '$admin', '$pl'], origin_server_ts: ts++ }));
  return { events, base, pool };
}

const VERSIONS = ['1', '2', '10', '12'];

describe.each(VERSIONS)('state resolution properties, room v%s', (version) => {
  const { events, base, pool } = room(version);
  const opts = { rules: roomVersionRules(version), lookup: (id: string) => events.get(id) };
  const stateSet = fc.subarray(pool).map((chosen) => {
    const s = new Map(base);
    for (const e of chosen) s.set(stateMapKey(e.type, e.state_key!), e.event_id);
    return s;
  });
  const sorted = (m: Map<string, string>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  it('does not depend on the order of the state sets', () => {
    fc.assert(
      fc.property(fc.array(stateSet, { minLength: 2, maxLength: 4 }).chain((sets) => fc.tuple(fc.constant(sets), fc.shuffledSubarray(sets, { minLength: sets.length }))), ([sets, shuffled]) => {
        expect(sorted(resolveState(shuffled, opts))).toEqual(sorted(resolveState(sets, opts)));
      }),
      { numRuns: 150 },
    );
  });

  it('returns a single state set unchanged', () => {
    fc.assert(fc.property(stateSet, (s) => expect(sorted(resolveState([s], opts))).toEqual(sorted(s))), { numRuns: 100 });
  });

  it('returns identical state sets unchanged', () => {
    fc.assert(fc.property(stateSet, (s) => expect(sorted(resolveState([s, new Map(s)], opts))).toEqual(sorted(s))), { numRuns: 100 });
  });
});
