// Issue 14, partial-state joins as the resident server: send_join v2 with omit_members=true serves the state
// without the members (but those the joiner needs), the auth chain of what it serves, and servers_in_room.
import { MaliciousServer } from '@fedgate/testing';
import { stateMapKey } from '@fedgate/room-state';
import { arena, ALICE, type Arena } from './setup';

type Served = Array<{ type?: string; state_key?: string }>;
const memberKeys = (state: Served) => state.filter((e) => e.type === 'm.room.member').map((e) => e.state_key).sort();

describe('adversarial: send_join with omit_members (resident)', () => {
  let t: Arena;
  let joiner: MaliciousServer;
  let roomId: string;
  beforeEach(async () => {
    t = await arena();
    joiner = MaliciousServer.on(t.network, 'joiner.test');
    roomId = await t.fedgate.createRoom(ALICE, '10');
    for (const who of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']) await t.evil.joinRoom(t.fedgate, roomId, who);
  });
  afterEach(() => t.network.close());

  async function joinEvent(localpart = 'newbie') {
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: joiner.user(localpart), membership: 'join', origin: joiner.name, supportedVersions: ['10'] });
    if (!made.ok) throw new Error(made.error);
    return joiner.sign({ ...(made.event as Record<string, unknown>), origin_server_ts: Date.now() } as never, '10');
  }

  it('serves no member but the heroes of an unnamed room, members_omitted and servers_in_room before the join', async () => {
    const join = await joinEvent();
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: joiner.name, event: join.pdu as never, omitMembers: true });
    if (!reply.ok) throw new Error(reply.error);
    expect(reply.membersOmitted).toBe(true);
    // Alice and the first four of evil's joins: the five earliest joined members (the room has no name).
    expect(memberKeys(reply.state as Served)).toEqual([ALICE, t.evil.user('m1'), t.evil.user('m2'), t.evil.user('m3'), t.evil.user('m4')].sort());
    expect(reply.serversInRoom).toEqual(['evil.test', 'fg.test']);
    // The auth chain is that of what is served: none of the omitted members' joins, nothing served twice.
    const chainIds = new Set((reply.authChain as Array<Record<string, unknown>>).map((p) => JSON.stringify(p)));
    for (const s of reply.state as Array<Record<string, unknown>>) expect(chainIds.has(JSON.stringify(s))).toBe(false);
    expect(memberKeys(reply.authChain as Served)).not.toContain(t.evil.user('m7'));
    // Every auth event of what is served is served.
    const full = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: joiner.name, event: join.pdu as never });
    if (!full.ok) throw new Error(full.error);
    expect(full.membersOmitted).toBe(false);
    expect(memberKeys(full.state as Served)).toHaveLength(8);
  });

  it('a named room: no heroes, only state the auth of the join needs', async () => {
    await t.fedgate.send(roomId, ALICE, 'm.room.name', { name: 'Big room' }, { stateKey: '' });
    const join = await joinEvent();
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: joiner.name, event: join.pdu as never, omitMembers: true });
    if (!reply.ok) throw new Error(reply.error);
    expect(memberKeys(reply.state as Served)).toEqual([]);
    // Alice's join authorised the power levels and join rules: it comes in the auth chain, not the state.
    expect(memberKeys(reply.authChain as Served)).toEqual([ALICE]);
    expect((reply.state as Served).map((e) => e.type).sort()).toEqual(['m.room.create', 'm.room.history_visibility', 'm.room.join_rules', 'm.room.name', 'm.room.power_levels']);
  });

  it("the joiner's own earlier membership is served: the state keeps the joiner's key", async () => {
    await t.fedgate.send(roomId, ALICE, 'm.room.name', { name: 'Big room' }, { stateKey: '' });
    await joiner.joinRoom(t.fedgate, roomId, 'newbie');
    const madeLeave = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: joiner.user('newbie'), membership: 'leave', origin: joiner.name });
    if (!madeLeave.ok) throw new Error(madeLeave.error);
    const leave = joiner.sign({ ...(madeLeave.event as Record<string, unknown>), origin_server_ts: Date.now() } as never, '10');
    expect(await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: leave.eventId, membership: 'leave', origin: joiner.name, event: leave.pdu as never })).toMatchObject({ ok: true });
    const join = await joinEvent();
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: joiner.name, event: join.pdu as never, omitMembers: true });
    if (!reply.ok) throw new Error(reply.error);
    expect(memberKeys(reply.state as Served)).toEqual([joiner.user('newbie')]);
    expect((reply.state as Array<{ type?: string; content?: { membership?: string } }>).find((e) => e.type === 'm.room.member')?.content?.membership).toBe('leave');
    // The joiner's server had left: it was not in the room before this join.
    expect(reply.serversInRoom).toEqual(['evil.test', 'fg.test']);
  });

  it("servers_in_room keeps the joiner's server when another of its users was joined already", async () => {
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: t.evil.user('late'), membership: 'join', origin: 'evil.test', supportedVersions: ['10'] });
    if (!made.ok) throw new Error(made.error);
    const join = t.evil.sign({ ...(made.event as Record<string, unknown>), origin_server_ts: Date.now() } as never, '10');
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: 'evil.test', event: join.pdu as never, omitMembers: true });
    expect(reply).toMatchObject({ ok: true, serversInRoom: ['evil.test', 'fg.test'] });
  });

  it('a joiner lying about its origin is refused, omit_members or not, and nothing is stored', async () => {
    const join = await joinEvent();
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: 'evil.test', event: join.pdu as never, omitMembers: true });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect(await t.fedgate.store.events.get(join.eventId)).toBeUndefined();
  });

  it('a banned joiner learns nothing of the room through omit_members', async () => {
    await t.fedgate.send(roomId, ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: joiner.user('newbie') });
    const current = (await t.fedgate.resolver.timeline.currentState(roomId))!;
    const join = joiner.sign(
      {
        room_id: roomId,
        type: 'm.room.member',
        state_key: joiner.user('newbie'),
        sender: joiner.user('newbie'),
        content: { membership: 'join' },
        prev_events: await t.fedgate.store.rooms.getForwardExtremities(roomId),
        auth_events: [stateMapKey('m.room.create', ''), stateMapKey('m.room.power_levels', ''), stateMapKey('m.room.join_rules', ''), stateMapKey('m.room.member', joiner.user('newbie'))].map((k) => current.get(k)!),
        depth: 100,
      } as never,
      '10',
    );
    const reply = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: joiner.name, event: join.pdu as never, omitMembers: true });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect((reply as { state?: unknown }).state).toBeUndefined();
  });
});
