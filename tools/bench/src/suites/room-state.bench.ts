// Room state: resolving two forks of a 10,000-member room, and auth chains over 100,000 events.
import { roomVersionRules } from '@fedgate/protocol';
import { authChain, resolveState, stateMapKey, type RoomEvent } from '@fedgate/room-state';
import { fmt, measureOnce, percentile, type BenchSuite } from '../harness';

const ROOM = '!bench:hs.example';
const ADMIN = '@admin:hs.example';
const rules = roomVersionRules('10');

function member(id: string, user: string, sender: string, membership: string, auth: string[], ts: number, extra: Record<string, string> = {}): RoomEvent {
  return { event_id: id, room_id: ROOM, sender, type: 'm.room.member', state_key: user, content: { membership, ...extra }, prev_events: [], auth_events: auth, origin_server_ts: ts };
}

/** A 10,000-member room and two forks: members 0–499 change their display name on one, the admin kicks them on the other. */
function twoForks(members: number, conflictedKeys: number) {
  const events = new Map<string, RoomEvent>();
  const add = (e: RoomEvent) => (events.set(e.event_id, e), e);
  let ts = 0;
  add({ event_id: '$create', room_id: ROOM, sender: ADMIN, type: 'm.room.create', state_key: '', content: { creator: ADMIN, room_version: '10' }, prev_events: [], auth_events: [], origin_server_ts: ts++ });
  add(member('$admin', ADMIN, ADMIN, 'join', ['$create'], ts++));
  add({ event_id: '$pl', room_id: ROOM, sender: ADMIN, type: 'm.room.power_levels', state_key: '', content: { users: { [ADMIN]: 100 } }, prev_events: [], auth_events: ['$create', '$admin'], origin_server_ts: ts++ });
  add({ event_id: '$jr', room_id: ROOM, sender: ADMIN, type: 'm.room.join_rules', state_key: '', content: { join_rule: 'invite' }, prev_events: [], auth_events: ['$create', '$admin', '$pl'], origin_server_ts: ts++ });
  const base = new Map<string, string>();
  for (const id of ['$create', '$admin', '$pl', '$jr']) {
    const e = events.get(id)!;
    base.set(stateMapKey(e.type, e.state_key!), id);
  }
  for (let i = 0; i < members; i++) {
    const user = `@u${i}:hs${i % 50}.example`;
    add(member(`$join${i}`, user, user, 'join', ['$create', '$pl', '$jr'], ts++));
    base.set(stateMapKey('m.room.member', user), `$join${i}`);
  }
  const forkA = new Map(base);
  const forkB = new Map(base);
  for (let i = 0; i < conflictedKeys; i++) {
    const user = `@u${i}:hs${i % 50}.example`;
    add(member(`$rename${i}`, user, user, 'join', ['$create', '$pl', '$jr', `$join${i}`], ts++, { displayname: `user ${i}` }));
    forkA.set(stateMapKey('m.room.member', user), `$rename${i}`);
    add(member(`$kick${i}`, user, ADMIN, 'leave', ['$create', '$pl', '$admin', `$join${i}`], ts++));
    forkB.set(stateMapKey('m.room.member', user), `$kick${i}`);
  }
  return { events, forkA, forkB };
}

/** 100,000 state events: 1,000 users re-sending their membership, power levels replaced every 1,000 events. */
function longAuthDag(count: number) {
  const events = new Map<string, RoomEvent>();
  events.set('$create', { event_id: '$create', room_id: ROOM, sender: ADMIN, type: 'm.room.create', state_key: '', content: { creator: ADMIN }, prev_events: [], auth_events: [], origin_server_ts: 0 });
  let pl = '$create';
  const lastMember = new Map<number, string>();
  for (let i = 0; i < count; i++) {
    if (i % 1000 === 0) {
      const id = `$pl${i}`;
      events.set(id, { event_id: id, room_id: ROOM, sender: ADMIN, type: 'm.room.power_levels', state_key: '', content: { users: { [ADMIN]: 100 } }, prev_events: [], auth_events: pl === '$create' ? ['$create'] : ['$create', pl], origin_server_ts: i });
      pl = id;
      continue;
    }
    const u = i % 1000;
    const user = `@u${u}:hs.example`;
    const auth = ['$create', pl];
    const prev = lastMember.get(u);
    if (prev) auth.push(prev);
    const id = `$m${i}`;
    events.set(id, member(id, user, user, 'join', auth, i));
    lastMember.set(u, id);
  }
  return events;
}

const suite: BenchSuite = {
  name: 'room-state',
  async run() {
    const { events, forkA, forkB } = twoForks(10_000, 500);
    const lookup = (id: string) => events.get(id);
    const resolveOnce = () => resolveState([forkA, forkB], { rules, lookup });
    const first = await measureOnce(resolveOnce);
    const kicked = [...first.result.values()].filter((id) => id.startsWith('$kick')).length;
    const times: number[] = [];
    for (let i = 0; i < 10; i++) times.push((await measureOnce(resolveOnce)).ms);
    times.sort((a, b) => a - b);
    const median = percentile(times, 50);

    const dag = longAuthDag(100_000);
    const dagLookup = (id: string) => dag.get(id);
    const ids = [...dag.keys()];
    const chain = await measureOnce(() => authChain(ids, dagLookup));
    const chainTimes: number[] = [];
    for (let i = 0; i < 5; i++) chainTimes.push((await measureOnce(() => authChain(ids, dagLookup))).ms);
    chainTimes.sort((a, b) => a - b);

    return [
      {
        title: 'state resolution v2, two forks of a 10,000-member room, 1,000 conflicted state events',
        rows: [
          { name: 'first resolution (cold)', value: fmt.ms(first.ms), note: `peak RSS +${fmt.mb(first.peakRssDeltaMb)}, heap +${fmt.mb(first.heapDeltaMb)}` },
          { name: 'median of 10 resolutions', value: fmt.ms(median), note: `min ${fmt.ms(times[0])}, max ${fmt.ms(times[times.length - 1])}` },
          { name: 'resolved state', value: `${first.result.size} entries`, note: `${kicked} of 500 kicks win: the room is invite-only, so a display-name change after a kick is a join that fails` },
        ],
        targets: [{ description: '1,000-conflict resolution under 200 ms on one core', met: median < 200, measured: fmt.ms(median) }],
        notes: ['One fork renames members 0–499 (their own joins), the other has the admin kick them (power events): 500 keys × 2 values.'],
      },
      {
        title: 'auth chain over 100,000 events',
        rows: [
          { name: 'authChain of all 100,000 events (cold)', value: fmt.ms(chain.ms), note: `${chain.result.size} events in the chain; peak RSS +${fmt.mb(chain.peakRssDeltaMb)}` },
          { name: 'median of 5', value: fmt.ms(percentile(chainTimes, 50)) },
        ],
      },
    ];
  },
};
export default suite;
