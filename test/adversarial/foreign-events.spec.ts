// Issue 10 defect 2 (and 12 on the receive path): a peer names events of another room we hold — as prev_events,
// in a /state_ids answer, or in auth_events — to make them this room's state. None may enter it.
import { splitStateMapKey, stateMapKey } from '@fedgate/room-state';
import { stateTupleKey } from '@fedgate/store';
import { aliceCanSend, arena, ALICE, currentState, roomsInState, type Arena } from './setup';

describe('adversarial: events of another room', () => {
  let t: Arena;
  let roomA: string;
  let roomB: string;
  beforeEach(async () => {
    t = await arena();
    roomA = await t.fedgate.createRoom(ALICE, '10');
    roomB = await t.fedgate.createRoom(ALICE, '10');
    await t.evil.joinRoom(t.fedgate, roomA);
    await t.evil.joinRoom(t.fedgate, roomB);
    // In room B the attacker is all-powerful; room A must never see that.
    const pl = await t.fedgate.send(roomB, ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [t.evil.user('mallory')]: 100 }, state_default: 50 }, { stateKey: '' });
    expect(pl.ok).toBe(true);
  });
  afterEach(() => t.network.close());

  const headOf = async (roomId: string) => (await t.fedgate.store.rooms.getForwardExtremities(roomId))[0];

  it('defect 2: a PDU whose prev_events name an event of another room is rejected, with the reason kept', async () => {
    const attack = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: t.evil.user('mallory'), content: { body: 'x' }, prev_events: [await headOf(roomB)] });
    const [delivery] = await t.evil.deliver(t.fedgate, [attack]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('another room') });
    expect(await roomsInState(t.fedgate, roomA)).toEqual(new Set([roomA]));
    expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
  });

  it('defect 2: prev_events mixing this room and another room (the resolution path) are rejected too', async () => {
    const attack = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: t.evil.user('mallory'), content: { body: 'x' }, prev_events: [await headOf(roomA), await headOf(roomB)] });
    const [delivery] = await t.evil.deliver(t.fedgate, [attack]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('another room') });
    expect(await roomsInState(t.fedgate, roomA)).toEqual(new Set([roomA]));
    expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
  });

  it('defect 2: a /state_ids answer naming events of another room: they are left out and audited', async () => {
    const mallory = t.evil.user('mallory');
    const stateA = await currentState(t.fedgate, roomA);
    const stateB = await currentState(t.fedgate, roomB);
    // P is never sent: the fedgate must ask for the state at it.
    const p = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'gap' } });
    const x = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'after the gap' }, prev_events: [p.eventId], depth: (p.pdu.depth as number) + 1 });
    const lyingState = [stateA.get(stateMapKey('m.room.create', ''))!, stateA.get(stateMapKey('m.room.member', mallory))!, stateB.get(stateMapKey('m.room.power_levels', ''))!, stateB.get(stateMapKey('m.room.join_rules', ''))!];
    t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: lyingState, auth_chain_ids: [] } }));
    await t.evil.deliver(t.fedgate, [x]);
    expect(await roomsInState(t.fedgate, roomA)).toEqual(new Set([roomA]));
    expect((await currentState(t.fedgate, roomA)).get(stateMapKey('m.room.power_levels', ''))).toBe(stateA.get(stateMapKey('m.room.power_levels', '')));
    const stateAtP = await t.fedgate.store.state.stateBeforeEvent(x.eventId);
    expect([...(stateAtP?.values() ?? [])]).not.toContain(stateB.get(stateMapKey('m.room.power_levels', '')));
    const audit = await t.fedgate.store.audit.query({ destination: 'evil.test' });
    expect(JSON.stringify(audit)).toContain('another room');
    expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
  });

  it('defect 2: a snapshot that already holds another room event (stored before the fix) makes resolution refuse, not adopt it', async () => {
    const mallory = t.evil.user('mallory');
    // Two forward extremities: Alice's message and Mallory's, both on the same parent.
    const first = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'one' } });
    const other = await t.fedgate.send(roomA, ALICE, 'm.room.message', { body: 'fork' });
    expect(other.ok).toBe(true);
    await t.evil.deliver(t.fedgate, [first]);
    // Corrupt the state after `first` as the old code did: room B's power levels in room A's snapshot.
    const poisoned = new Map<string, string>();
    for (const [key, id] of await currentState(t.fedgate, roomA)) {
      const { type, state_key } = splitStateMapKey(key);
      poisoned.set(stateTupleKey(type, state_key), type === 'm.room.power_levels' ? (await currentState(t.fedgate, roomB)).get(key)! : id);
    }
    const snapshot = await t.fedgate.store.state.save(roomA, poisoned);
    await t.fedgate.store.state.setForEvent(first.eventId, { before: snapshot, after: snapshot });
    const attack = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'x' }, prev_events: [first.eventId, other.ok ? other.eventId : ''] });
    const [delivery] = await t.evil.deliver(t.fedgate, [attack]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('refused by state resolution') });
  });

  it('a /state_ids answer that omits the create event is refused (the event waits, nothing is stored)', async () => {
    const mallory = t.evil.user('mallory');
    const stateA = await currentState(t.fedgate, roomA);
    const p = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'gap' } });
    const x = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'after' }, prev_events: [p.eventId], depth: (p.pdu.depth as number) + 1 });
    const withoutCreate = [...stateA.entries()].filter(([k]) => k !== stateMapKey('m.room.create', '')).map(([, id]) => id);
    t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: withoutCreate, auth_chain_ids: [] } }));
    const [delivery] = await t.evil.deliver(t.fedgate, [x]);
    expect(delivery.error).toMatch(/create event/);
    expect(await t.fedgate.store.events.get(x.eventId)).toBeUndefined();
    expect(await t.fedgate.store.state.getForEvent(p.eventId)).toBeUndefined();
    expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
  });

  it('auth_events naming an event of another room: rejected (rule 2.5), room state untouched', async () => {
    const mallory = t.evil.user('mallory');
    const stateA = await currentState(t.fedgate, roomA);
    const stateB = await currentState(t.fedgate, roomB);
    const attack = await t.evil.eventIn(t.fedgate, roomA, {
      type: 'm.room.topic', state_key: '', sender: mallory, content: { topic: 'owned' },
      auth_events: [stateA.get(stateMapKey('m.room.create', ''))!, stateB.get(stateMapKey('m.room.power_levels', ''))!, stateA.get(stateMapKey('m.room.member', mallory))!],
    });
    const [delivery] = await t.evil.deliver(t.fedgate, [attack]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/is in room/) });
    expect((await currentState(t.fedgate, roomA)).get(stateMapKey('m.room.topic', ''))).toBeUndefined();
  });

  it('rejected events used as prev and auth events never bring their content into state', async () => {
    const mallory = t.evil.user('mallory');
    const stateA = await currentState(t.fedgate, roomA);
    const grab = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.power_levels', state_key: '', sender: mallory, content: { users: { [mallory]: 100 } } });
    expect((await t.evil.deliver(t.fedgate, [grab]))[0]).toMatchObject({ status: 'rejected' });
    const usesAsAuth = await t.evil.eventIn(t.fedgate, roomA, {
      type: 'm.room.name', state_key: '', sender: mallory, content: { name: 'owned' },
      auth_events: [stateA.get(stateMapKey('m.room.create', ''))!, grab.eventId, stateA.get(stateMapKey('m.room.member', mallory))!],
    });
    expect((await t.evil.deliver(t.fedgate, [usesAsAuth]))[0]).toMatchObject({ status: 'rejected', reason: expect.stringContaining('was rejected') });
    const onTopOf = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'after' }, prev_events: [grab.eventId] });
    await t.evil.deliver(t.fedgate, [onTopOf]);
    const now = await currentState(t.fedgate, roomA);
    expect(now.get(stateMapKey('m.room.power_levels', ''))).toBe(stateA.get(stateMapKey('m.room.power_levels', '')));
    expect(now.get(stateMapKey('m.room.name', ''))).toBeUndefined();
    expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
  });
});
