// Issue 14, partial-state joins as the joining server: the room is usable once send_join (omit_members)
// returns, the full state comes in the background, events accepted meanwhile are checked again against it,
// a restart halfway resumes, and a resident that lies in its state answers does not corrupt the room.
import { MaliciousServer } from '@fedgate/testing';
import { TestNetwork, type TestServer } from '@fedgate/state-resolver';
import { stateMapKey } from '@fedgate/room-state';
import { ALICE } from './setup';

const BOB = '@bob:b.test';
const memberCount = (state: Map<string, string>) => [...state.keys()].filter((k) => k.startsWith('m.room.member\u0000')).length;

describe('adversarial: partial-state join (joiner)', () => {
  let network: TestNetwork;
  let resident: TestServer;
  let joiner: TestServer;
  let evil: MaliciousServer;
  let roomId: string;
  const evilJoins = new Map<string, string>();

  beforeEach(async () => {
    network = new TestNetwork();
    resident = await network.add('fg.test');
    joiner = await network.add('b.test');
    evil = MaliciousServer.on(network, 'evil.test');
    roomId = await resident.createRoom(ALICE, '10', [{ type: 'm.room.name', stateKey: '', content: { name: 'Big room' } }]);
    for (const who of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) evilJoins.set(who, (await evil.joinRoom(resident, roomId, who)).eventId);
  });
  afterEach(() => network.close());

  async function partialJoin() {
    const reply = await joiner.resolver.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['fg.test'] });
    if (!reply.ok) throw new Error(reply.error);
    return reply.eventId;
  }

  /** m5, banned at the resident before our partial join, speaks after it naming its old join as its auth: the partial state cannot tell. */
  async function bannedSpeaksAfterPartialJoin(body: string) {
    joiner.resolver.resync.stop();
    await resident.send(roomId, ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: evil.user('m5') });
    const joinId = await partialJoin();
    const current = (await joiner.resolver.timeline.currentState(roomId))!;
    const banned = evil.sign(
      {
        room_id: roomId,
        type: 'm.room.message',
        sender: evil.user('m5'),
        content: { body },
        prev_events: [joinId],
        auth_events: [current.get(stateMapKey('m.room.create', ''))!, current.get(stateMapKey('m.room.power_levels', ''))!, evilJoins.get('m5')!],
        depth: (await joiner.store.events.get(joinId))!.depth + 1,
      } as never,
      '10',
    );
    return { joinId, banned };
  }

  it('usable at once: partial state, sends go to servers_in_room, inbound events accepted; then the full state matches the resident', async () => {
    joiner.resolver.resync.stop(); // resynced by hand below, once the room has been used
    const joinId = await partialJoin();
    expect(await joiner.store.partialStateRooms.get(roomId)).toMatchObject({ joinEventId: joinId, resident: 'fg.test', serversInRoom: ['evil.test', 'fg.test'] });
    expect(memberCount((await joiner.resolver.timeline.currentState(roomId))!)).toBe(1);
    // Sending: the room log entry names every server send_join said is in the room (egress sends there).
    const sent = await joiner.send(roomId, BOB, 'm.room.message', { msgtype: 'm.text', body: 'hello early' });
    expect(sent.ok).toBe(true);
    const entry = joiner.published.find((e) => e.eventId === (sent as { eventId: string }).eventId)!;
    expect(entry.joinedServers).toEqual(['b.test', 'evil.test', 'fg.test']);
    await resident.receive(joiner, (sent as { eventId: string }).eventId);
    // Receiving from a member the partial state does not know: authorised with its own membership from its auth events.
    const e = await evil.eventIn(resident, roomId, { type: 'm.room.message', sender: evil.user('m3'), content: { body: 'hi bob' } });
    const [delivered] = await evil.deliver(joiner, [e]);
    expect(delivered).toMatchObject({ status: 'accepted' });

    const outcome = await joiner.resolver.resync.resync(roomId);
    expect(outcome).toMatchObject({ members: 7, rejected: [] });
    expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
    await resident.receive(joiner, (sent as { eventId: string }).eventId).catch(() => undefined);
    await evil.deliver(resident, [e]);
    expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
    expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['b.test', 'evil.test', 'fg.test']);
  });

  it('an event accepted only because a ban was missing from the partial state is rejected on re-check, with the reason kept', async () => {
    const { banned } = await bannedSpeaksAfterPartialJoin('banned but talking');
    const [delivered] = await evil.deliver(joiner, [banned]);
    expect(delivered).toMatchObject({ status: 'accepted' });
    const later = await joiner.send(roomId, BOB, 'm.room.message', { body: 'after it' });
    expect(later.ok).toBe(true);

    const outcome = await joiner.resolver.resync.resync(roomId);
    expect(outcome?.rejected.map((r) => r.eventId)).toEqual([banned.eventId]);
    const stored = await joiner.store.events.get(banned.eventId);
    expect(stored).toMatchObject({ status: 'rejected' });
    expect(stored?.reason).toMatch(/re-checked against the full state/);
    expect((await joiner.resolver.timeline.currentState(roomId))!.get(stateMapKey('m.room.member', evil.user('m5')))).not.toBe(evilJoins.get('m5'));
    expect((await joiner.send(roomId, BOB, 'm.room.message', { body: 'still usable' })).ok).toBe(true);
  });

  it('defect: a resync cut short between rejecting an event and taking it out of the forward extremities left it an extremity for good (the resumed run skips rejected events); now the resumed run takes it out', async () => {
    const { joinId, banned } = await bannedSpeaksAfterPartialJoin('banned but talking, and the last word');
    expect((await evil.deliver(joiner, [banned]))[0]).toMatchObject({ status: 'accepted' });
    expect(await joiner.store.rooms.getForwardExtremities(roomId)).toEqual([banned.eventId]);

    // The process dies at the extremities' update that follows the rejection.
    let rejected = false;
    const store = joiner.store;
    const dying = {
      ...store,
      events: new Proxy(store.events, { get: (t, k) => (k === 'setOutcome' ? (...a: Parameters<typeof t.setOutcome>) => t.setOutcome(...a).then(() => void (rejected = true)) : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)) }),
      rooms: new Proxy(store.rooms, { get: (t, k) => (k === 'updateForwardExtremities' && rejected ? () => Promise.reject(new Error('simulated crash')) : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)) }),
    };
    const { StateResolver } = await import('@fedgate/state-resolver');
    const deps = (joiner.resolver as unknown as { deps: ConstructorParameters<typeof StateResolver>[0] }).deps;
    await expect(new StateResolver({ ...deps, store: dying }).resync.resync(roomId)).rejects.toThrow(/simulated crash/);
    expect(await joiner.store.events.get(banned.eventId)).toMatchObject({ status: 'rejected' });
    expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();

    await joiner.resolver.resync.resync(roomId);
    expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
    expect(await joiner.store.rooms.getForwardExtremities(roomId)).toEqual([joinId]);
    const after = await joiner.send(roomId, BOB, 'm.room.message', { body: 'built on the join, not on the rejected event' });
    expect(after.ok).toBe(true);
    expect((await joiner.store.events.get((after as { eventId: string }).eventId))?.prevEventIds).toEqual([joinId]);
  });

  it('a restart halfway resumes the resync (the partial record survives; a new state-resolver finishes it)', async () => {
    joiner.resolver.resync.stop();
    await partialJoin();
    network.down.add('fg.test');
    await expect(joiner.resolver.resync.resync(roomId)).rejects.toThrow(/full state of .* not fetched/);
    expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();
    network.down.delete('fg.test');
    const { StateResolver } = await import('@fedgate/state-resolver');
    const restarted = new StateResolver({ store: joiner.store, bus: joiner.bus, topology: joiner.topology, identity: { serverName: 'b.test', signingKey: joiner.key }, federation: (joiner.resolver as unknown as { deps: { federation: never } }).deps.federation, keyRing: network.keyRing() });
    await restarted.start();
    try {
      for (let i = 0; i < 200 && (await joiner.store.partialStateRooms.get(roomId)); i++) await new Promise((r) => setTimeout(r, 25));
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
      expect(memberCount((await joiner.resolver.timeline.currentState(roomId))!)).toBe(8);
    } finally {
      await restarted.stop();
    }
  });
});

describe('adversarial: partial-state join through a lying resident', () => {
  let network: TestNetwork;
  let joiner: TestServer;
  let evil: MaliciousServer;

  beforeEach(async () => {
    network = new TestNetwork();
    joiner = await network.add('b.test');
    evil = MaliciousServer.on(network, 'evil.test');
  });
  afterEach(() => network.close());

  async function hostedPartialJoin() {
    const room = evil.createRoom('10');
    evil.append(room, { type: 'm.room.name', state_key: '', sender: evil.user('boss'), content: { name: 'trap' } });
    for (const who of ['x1', 'x2', 'x3']) evil.append(room, { type: 'm.room.member', state_key: evil.user(who), sender: evil.user(who), content: { membership: 'join' } });
    evil.lie('send_join', async (_request, honest) => {
      const answer = (await honest()).body as { state: Array<{ type: string }>; [k: string]: unknown };
      return { status: 200, body: { ...answer, state: answer.state.filter((e) => e.type !== 'm.room.member'), members_omitted: true, servers_in_room: ['evil.test'] } };
    });
    joiner.resolver.resync.stop();
    const reply = await joiner.resolver.remoteMembership.onCommand({ roomId: room.roomId, userId: BOB, membership: 'join', via: ['evil.test'] });
    if (!reply.ok) throw new Error(reply.error);
    return room;
  }

  it('forged members and events of another room in /state_ids are refused (audited); the honest members go in', async () => {
    const room = await hostedPartialJoin();
    const other = evil.createRoom('10');
    const foreign = evil.append(other, { type: 'm.room.member', state_key: evil.user('intruder'), sender: evil.user('intruder'), content: { membership: 'join' } });
    // A join of a user of another server, signed only by evil: its signature check fails.
    const forged = evil.sign({ room_id: room.roomId, type: 'm.room.member', state_key: '@victim:b.test', sender: '@victim:b.test', content: { membership: 'join' }, prev_events: [room.head], auth_events: [...room.state.values()].slice(0, 3), depth: 99 } as never, '10');
    evil.lie('state_ids', async (_request, honest) => {
      const answer = (await honest()).body as { pdu_ids: string[]; auth_chain_ids: string[] };
      return { status: 200, body: { pdu_ids: [...answer.pdu_ids, foreign.eventId, forged.eventId], auth_chain_ids: answer.auth_chain_ids } };
    });
    const outcome = await joiner.resolver.resync.resync(room.roomId);
    expect(outcome?.members).toBe(4);
    const state = (await joiner.resolver.timeline.currentState(room.roomId))!;
    expect(state.has(stateMapKey('m.room.member', '@victim:b.test'))).toBe(false);
    expect(state.has(stateMapKey('m.room.member', evil.user('intruder')))).toBe(false);
    expect(state.get(stateMapKey('m.room.member', evil.user('x2')))).toBe(room.state.get(stateMapKey('m.room.member', evil.user('x2'))));
    const audit = await joiner.store.audit.query({ limit: 20 } as never);
    const refusals = JSON.stringify(audit.filter((a) => a.path.includes('/state_ids/')));
    expect(refusals).toContain(`is in room ${other.roomId}, not ${room.roomId}`);
    expect(refusals).toContain('no signature from b.test');
  });

  it('a /state_ids answer naming another create event is refused whole: the room stays partial and usable', async () => {
    const room = await hostedPartialJoin();
    const other = evil.createRoom('10');
    evil.lie('state_ids', async (_request, honest) => {
      const answer = (await honest()).body as { pdu_ids: string[]; auth_chain_ids: string[] };
      const createId = room.state.get(stateMapKey('m.room.create', ''))!;
      return { status: 200, body: { pdu_ids: [...answer.pdu_ids.filter((id) => id !== createId), other.state.get(stateMapKey('m.room.create', ''))!], auth_chain_ids: answer.auth_chain_ids } };
    });
    await expect(joiner.resolver.resync.resync(room.roomId)).rejects.toThrow(/create event/);
    expect((await joiner.store.audit.query({ limit: 20 } as never)).find((a) => a.reason === 'state_answer_refused')).toMatchObject({ destination: 'evil.test', outcome: 'rejected' });
    expect(await joiner.store.partialStateRooms.get(room.roomId)).toBeDefined();
    expect(memberCount((await joiner.resolver.timeline.currentState(room.roomId))!)).toBe(1);
    expect((await joiner.send(room.roomId, BOB, 'm.room.message', { body: 'still usable' })).ok).toBe(true);
    evil.tellTheTruth('state_ids');
    expect(await joiner.resolver.resync.resync(room.roomId)).toMatchObject({ members: 4 });
  });
});
