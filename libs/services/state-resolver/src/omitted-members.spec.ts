// omit_members (resident side): which members a reduced send_join answer keeps.
import { stateMapKey, type RoomEvent } from '@fedgate/room-state';
import { heroesOf, reduceJoinState, serversBeforeJoin } from './omitted-members';

function member(id: string, userId: string, membership: string, depth: number, authEvents: string[] = ['$create']): RoomEvent {
  return { event_id: id, room_id: '!r:a.test', sender: userId, type: 'm.room.member', state_key: userId, content: { membership }, prev_events: [], auth_events: authEvents, origin_server_ts: depth, depth };
}

const create: RoomEvent = { event_id: '$create', room_id: '!r:a.test', sender: '@c:a.test', type: 'm.room.create', state_key: '', content: {}, prev_events: [], auth_events: [], origin_server_ts: 0, depth: 1 };

function room(members: RoomEvent[], extra: RoomEvent[] = []) {
  const events = new Map<string, RoomEvent>([[create.event_id, create], ...[...members, ...extra].map((e) => [e.event_id, e] as const)]);
  const before = new Map<string, string>([[stateMapKey('m.room.create', ''), create.event_id]]);
  for (const e of [...members, ...extra]) before.set(stateMapKey(e.type, e.state_key!), e.event_id);
  return { before, graph: { lookup: (id: string) => events.get(id) } };
}

describe('omit_members: the members a reduced send_join keeps', () => {
  const join = member('$join', '@new:b.test', 'join', 50);

  it('heroes: the five earliest joined or invited members, the joiner left out; ties by event ID', () => {
    const members = [member('$m7', '@g:a.test', 'join', 7), member('$m2b', '@b:a.test', 'invite', 2), member('$m2a', '@a:a.test', 'join', 2), member('$m3', '@c:a.test', 'leave', 3), member('$m4', '@d:a.test', 'join', 4), member('$m5', '@e:a.test', 'join', 5), member('$m6', '@f:a.test', 'join', 6), member('$old', '@new:b.test', 'leave', 1)];
    const { before, graph } = room(members);
    expect(heroesOf(before, join, graph)).toEqual(['@a:a.test', '@b:a.test', '@d:a.test', '@e:a.test', '@f:a.test']);
  });

  it('heroes: those who left when nobody is joined or invited; none in a named room', () => {
    const gone = [member('$l1', '@x:a.test', 'leave', 3), member('$l2', '@y:a.test', 'ban', 2)];
    const { before, graph } = room(gone);
    expect(heroesOf(before, join, graph)).toEqual(['@y:a.test', '@x:a.test']);
    const name: RoomEvent = { ...create, event_id: '$name', type: 'm.room.name', content: { name: 'n' } };
    const named = room(gone, [name]);
    expect(heroesOf(named.before, join, named.graph)).toEqual([]);
  });

  it("keeps the joiner's own earlier membership and the authoriser's; the auth chain leaves out what the state holds", () => {
    const authoriser = member('$auth', '@mod:a.test', 'join', 3);
    const invite = member('$inv', '@new:b.test', 'invite', 4, ['$create', '$auth']);
    const other = member('$other', '@z:a.test', 'join', 5);
    const name: RoomEvent = { ...create, event_id: '$name', type: 'm.room.name', content: { name: 'n' }, auth_events: ['$create', '$auth'] };
    const { before, graph } = room([authoriser, invite, other], [name]);
    const restricted = { ...join, content: { membership: 'join', join_authorised_via_users_server: '@mod:a.test' }, auth_events: ['$create', '$inv', '$auth'] };
    const reduced = reduceJoinState(before, restricted, graph);
    expect(reduced.stateIds.sort()).toEqual(['$auth', '$create', '$inv', '$name']);
    expect(reduced.authChainIds).toEqual([]);
    const plain = reduceJoinState(before, join, graph);
    expect(plain.stateIds.sort()).toEqual(['$create', '$inv', '$name']);
    // Without an authoriser named, its join comes in the auth chain (the invite's and the name's auth event), not the state.
    expect(plain.authChainIds).toEqual(['$auth']);
  });

  it("servers before the join: the joiner's server only when another of its users was joined", () => {
    const { before, graph } = room([member('$a', '@a:a.test', 'join', 2), member('$b1', '@old:b.test', 'leave', 3)]);
    expect(serversBeforeJoin(['a.test', 'b.test'], before, join, graph)).toEqual(['a.test']);
    const still = room([member('$a', '@a:a.test', 'join', 2), member('$b1', '@old:b.test', 'join', 3)]);
    expect(serversBeforeJoin(['a.test', 'b.test'], still.before, join, still.graph)).toEqual(['a.test', 'b.test']);
  });
});
