// Issue 16: Complement's federation behaviours on the inbound path (gaps, size limits, missing auth events),
// played against an in-process fedgate by a scripted peer.
import type { HandlerOutcome, InboundPdu, ParkedPdu, ReceivedMessage, RoomLogEntry } from '@fedgate/bus';
import { stateMapKey } from '@fedgate/room-state';
import type { SignedEvent } from '@fedgate/testing';
import { aliceCanSend, arenaWithEvilJoined, ALICE, currentState, type Arena } from './setup';

describe('complement: inbound events', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    ({ t, roomId } = await arenaWithEvilJoined());
  });
  afterEach(() => t.network.close());

  const mallory = () => t.evil.user('mallory');

  it('issue 16 defect 1: a v10 gap through an event of 256 bytes but 128 code points closes; that event is stored rejected', async () => {
    const wide = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.topic', sender: mallory(), state_key: 'é'.repeat(128), content: { topic: 'wide' } });
    const after = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'after' }, prev_events: [wide.eventId], depth: (wide.pdu.depth as number) + 1 });
    t.evil.lie('get_missing_events', () => ({ status: 200, body: { events: [wide.pdu] } }));
    const [delivery] = await t.evil.deliver(t.fedgate, [after]);
    expect(delivery).toEqual({ eventId: after.eventId, status: 'accepted' });
    expect(await t.fedgate.store.events.get(wide.eventId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('field_too_long: state_key is 256 bytes') });
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.topic', 'é'.repeat(128)))).toBeUndefined();
    expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([after.eventId]);
    expect(await aliceCanSend(t.fedgate, roomId)).toBe(true);
  });

  it('issue 16 defect 1: the same event received directly is stored rejected with the reason, not refused unseen', async () => {
    const wide = await t.evil.eventIn(t.fedgate, roomId, { type: 'ü'.repeat(200), sender: mallory(), content: {} });
    const [delivery] = await t.evil.deliver(t.fedgate, [wide]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('field_too_long: type is 400 bytes') });
  });

  it('issue 16 defect 1: in v11 an event over 255 bytes is refused before the room sees it', async () => {
    const v11 = await t.fedgate.createRoom(ALICE, '11');
    await t.evil.joinRoom(t.fedgate, v11);
    const wide = await t.evil.eventIn(t.fedgate, v11, { type: 'm.room.topic', sender: mallory(), state_key: 'é'.repeat(128), content: { topic: 'wide' } });
    const [delivery] = await t.evil.deliver(t.fedgate, [wide]);
    expect(delivery).toMatchObject({ refused: expect.stringContaining('state_key: is 256 bytes') });
    expect(await t.fedgate.store.events.get(wide.eventId)).toBeUndefined();
  });

  /** Mallory's own member event again (a displayname change), built on fedgate's current state but not sent. */
  const profileChange = async (name: string) => {
    const fields = { type: 'm.room.member', sender: mallory(), state_key: mallory(), content: { membership: 'join', displayname: name } };
    const draft = await t.evil.eventIn(t.fedgate, roomId, fields);
    return t.evil.eventIn(t.fedgate, roomId, { ...fields, auth_events: [...new Set(draft.pdu.auth_events as string[])] });
  };
  /** A message whose auth events name `member` in place of Mallory's join fedgate holds (prev events: fedgate's head). */
  const messageAuthedBy = async (member: SignedEvent, body: string) => {
    const honest = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body } });
    const current = await currentState(t.fedgate, roomId);
    const join = current.get(stateMapKey('m.room.member', mallory()));
    const auth = (honest.pdu.auth_events as string[]).map((id) => (id === join ? member.eventId : id));
    return t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body }, auth_events: auth });
  };

  it('issue 16 defect 3: a live event naming auth events we do not hold has them fetched (/event_auth) and is accepted', async () => {
    const member = await profileChange('Mal');
    const message = await messageAuthedBy(member, 'authed by an event you never saw');
    const [delivery] = await t.evil.deliver(t.fedgate, [message]);
    expect(delivery).toEqual({ eventId: message.eventId, status: 'accepted' });
    expect(t.evil.requests.some((r) => r.segments[1] === 'event_auth')).toBe(true);
    expect(await t.fedgate.store.events.get(member.eventId)).toMatchObject({ status: 'accepted', outlier: true });
  });

  it('issue 16 defect 3 on the partition consumer: the /event_auth fetch is not made there; the event is parked, then accepted, not rejected', async () => {
    const member = await profileChange('Parked Mal');
    const message = await messageAuthedBy(member, 'authed by an event you never saw, via the partition');
    const data: InboundPdu = { eventId: message.eventId, roomId, roomVersion: '10', origin: 'evil.test', txnId: 'partition', receivedAt: Date.now(), redacted: false, pdu: message.pdu as never };
    const partitionMessage = { data, deliveryCount: 1, messageId: message.eventId, working: () => undefined } as unknown as ReceivedMessage<InboundPdu>;
    expect(await t.fedgate.resolver.parking.onPartitionMessage(partitionMessage)).toEqual({ kind: 'ack' });
    expect(await t.fedgate.store.events.get(message.eventId)).toBeUndefined();
    const [parked] = t.fedgate.bus.readStream<ParkedPdu>(t.fedgate.topology.streams.inbound.name, t.fedgate.topology.parkedPdu.all);
    expect(parked.data.inbound.eventId).toBe(message.eventId);
    const parkedMessage = { data: parked.data, deliveryCount: 1, messageId: parked.messageId, working: () => undefined } as unknown as ReceivedMessage<ParkedPdu>;
    expect(await t.fedgate.resolver.parking.onParkedMessage(parkedMessage)).toEqual({ kind: 'ack' });
    expect(await t.fedgate.store.events.get(message.eventId)).toMatchObject({ status: 'accepted' });
  });

  it('issue 16 defect 3: an event whose auth event is itself rejected (fetched, fails its own auth) is rejected', async () => {
    // Mallory has no power: a power levels event by her fails auth, and so does anything citing it.
    const current = await currentState(t.fedgate, roomId);
    const plId = current.get(stateMapKey('m.room.power_levels', ''))!;
    const pl = (await t.fedgate.store.events.get(plId))!.pdu;
    const forged = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.power_levels', sender: mallory(), state_key: '', content: { ...(pl.content as object), users: { [mallory()]: 100 } } });
    const honest = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.name', sender: mallory(), state_key: '', content: { name: 'mine' } });
    const attack = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.name', sender: mallory(), state_key: '', content: { name: 'mine' }, auth_events: (honest.pdu.auth_events as string[]).map((id) => (id === plId ? forged.eventId : id)) });
    const [delivery] = await t.evil.deliver(t.fedgate, [attack]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('was rejected') });
    expect(await t.fedgate.store.events.get(forged.eventId)).toMatchObject({ status: 'rejected' });
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.name', ''))).toBeUndefined();
  });

  const onMessage = (event: SignedEvent, deliveryCount = 1): Promise<HandlerOutcome> => {
    const data: InboundPdu = { eventId: event.eventId, roomId, roomVersion: '10', origin: 'evil.test', txnId: `t${deliveryCount}`, receivedAt: Date.now(), redacted: false, pdu: event.pdu as never };
    return t.fedgate.resolver.inbound.onMessage({ data, deliveryCount, messageId: event.eventId, working: () => undefined } as unknown as ReceivedMessage<InboundPdu>);
  };

  it('issue 16 defect 3: an /event failure while fetching the state named by /state_ids: retried when transient, dead-lettered with the reason when not', async () => {
    const hidden = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.member', sender: mallory(), state_key: mallory(), content: { membership: 'join', displayname: 'hidden' } });
    const gap = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'gap' }, prev_events: [hidden.eventId], depth: (hidden.pdu.depth as number) + 1 });
    const after = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'after' }, prev_events: [gap.eventId], depth: (gap.pdu.depth as number) + 2 });
    const current = await currentState(t.fedgate, roomId);
    const state = [...current.values()].filter((id) => id !== current.get(stateMapKey('m.room.member', mallory())));
    t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: [...state, hidden.eventId], auth_chain_ids: [] } }));
    t.evil.lie('event', (request) => (request.segments[2] === hidden.eventId ? { status: 500, body: { errcode: 'M_UNKNOWN', error: 'disk on fire' } } : undefined));
    expect(await onMessage(after)).toMatchObject({ kind: 'nak' });
    t.evil.lie('event', (request) => (request.segments[2] === hidden.eventId ? { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'gone' } } : undefined));
    expect(await onMessage(after, 2)).toEqual({ kind: 'term', reason: expect.stringMatching(new RegExp(`^\\${after.eventId}: .*404`)) });
    expect(await t.fedgate.store.events.get(after.eventId)).toBeUndefined();
    expect(await aliceCanSend(t.fedgate, roomId)).toBe(true);
  });

  it('complement TestCorruptedAuthChain: /event failing for one link of a chain named by /state_ids leaves none of the later links in the room', async () => {
    const current = await currentState(t.fedgate, roomId);
    const join = current.get(stateMapKey('m.room.member', mallory()))!;
    const base = [...new Set((await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.member', sender: mallory(), state_key: mallory(), content: { membership: 'join' } })).pdu.auth_events as string[])].filter((id) => id !== join);
    const chain: SignedEvent[] = [];
    let prev = join;
    for (const name of ['A', 'B', 'C', 'D', 'E']) {
      const link = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.member', sender: mallory(), state_key: mallory(), content: { membership: 'join', displayname: name }, prev_events: [prev], auth_events: [...base, prev], depth: 10 + chain.length });
      chain.push(link);
      prev = link.eventId;
    }
    const [, b, c, d, e] = chain;
    const after = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'for /send' }, prev_events: [e!.eventId], depth: 20 });
    const stateIds = [...current.entries()].filter(([k]) => k !== stateMapKey('m.room.member', mallory())).map(([, id]) => id);
    t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: [...stateIds, e!.eventId], auth_chain_ids: chain.slice(0, 4).map((x) => x.eventId) } }));
    t.evil.lie('event', (request) => (request.segments[2] === b!.eventId ? { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no B' } } : undefined));
    expect(await onMessage(after)).toMatchObject({ kind: 'term' });
    for (const link of [c!, d!, e!]) expect((await t.fedgate.store.events.get(link.eventId))?.status).not.toBe('accepted');
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.member', mallory()))).toBe(join);
    expect(await aliceCanSend(t.fedgate, roomId)).toBe(true);
  });

  it('sytest 50no-deextrem-outliers: events fetched as state (outliers) never become forward extremities, and the extremity they follow stays one', async () => {
    const [head] = await t.fedgate.store.rooms.getForwardExtremities(roomId);
    const hidden = await profileChange('hidden');
    const gap = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'gap' }, prev_events: [hidden.eventId], depth: (hidden.pdu.depth as number) + 1 });
    const after = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'after' }, prev_events: [gap.eventId], depth: (gap.pdu.depth as number) + 1 });
    const current = await currentState(t.fedgate, roomId);
    const state = [...current.entries()].filter(([k]) => k !== stateMapKey('m.room.member', mallory())).map(([, id]) => id);
    t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: [...state, hidden.eventId], auth_chain_ids: [] } }));
    const [delivery] = await t.evil.deliver(t.fedgate, [after]);
    expect(delivery).toEqual({ eventId: after.eventId, status: 'accepted' });
    expect(await t.fedgate.store.events.get(hidden.eventId)).toMatchObject({ outlier: true });
    expect((await t.fedgate.store.rooms.getForwardExtremities(roomId)).sort()).toEqual([head!, after.eventId].sort());
  });

  it('issue 16 defect 2: an event rejected for want of its auth events is accepted when sent again once they are known (unrejecting)', async () => {
    const member = await profileChange('Mal');
    const message = await messageAuthedBy(member, 'sent twice');
    t.evil.lie('event_auth', () => ({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'not telling' } }));
    const [first] = await t.evil.deliver(t.fedgate, [message]);
    expect(first).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/^auth_events_unavailable: .*404/) });
    t.evil.tellTheTruth();
    await t.evil.deliver(t.fedgate, [member]);
    const [second] = await t.evil.deliver(t.fedgate, [message]);
    expect(second).toEqual({ eventId: message.eventId, status: 'accepted' });
    const log = t.fedgate.bus.readStream<RoomLogEntry>(t.fedgate.topology.streams.roomLog.name).filter((m) => m.data.eventId === message.eventId);
    expect(log.map((m) => m.data.outcome)).toEqual(['rejected', 'accepted']);
  });

  it('issue 16 defect 2: an event rejected for another reason stays settled when sent again', async () => {
    const current = await currentState(t.fedgate, roomId);
    const plId = current.get(stateMapKey('m.room.power_levels', ''))!;
    const pl = (await t.fedgate.store.events.get(plId))!.pdu;
    const forged = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.power_levels', sender: mallory(), state_key: '', content: { ...(pl.content as object), users: { [mallory()]: 100 } } });
    await t.evil.deliver(t.fedgate, [forged]);
    const before = t.evil.requests.length;
    const [again] = await t.evil.deliver(t.fedgate, [forged]);
    expect(again).toMatchObject({ status: 'rejected' });
    expect(t.evil.requests.length).toBe(before);
  });

  it('issue 16 defect 5: state events on the room log carry unsigned.prev_content, prev_sender and replaces_state (local and remote)', async () => {
    const first = await t.fedgate.send(roomId, ALICE, 'm.room.topic', { topic: 'one' }, { stateKey: '' });
    const second = await t.fedgate.send(roomId, ALICE, 'm.room.topic', { topic: 'two' }, { stateKey: '' });
    const logged = (id: string) => t.fedgate.published.find((e) => e.eventId === id)!.event as { unsigned?: Record<string, unknown> };
    expect(first.ok && second.ok).toBe(true);
    const firstId = (first as { eventId: string }).eventId;
    expect(logged((second as { eventId: string }).eventId).unsigned).toEqual({ replaces_state: firstId, prev_content: { topic: 'one' }, prev_sender: ALICE });
    expect(logged(firstId).unsigned).toBeUndefined();
    const join = (await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.member', mallory()))!;
    const profile = await profileChange('Mal');
    await t.evil.deliver(t.fedgate, [profile]);
    expect(logged(profile.eventId).unsigned).toEqual({ replaces_state: join, prev_content: { membership: 'join' }, prev_sender: mallory() });
  });

  describe('complement TestOutboundFederationIgnoresMissingEventWithBadJSONForRoomVersion6 (sytest 33room-get-missing-events "missing event with bad JSON, v6")', () => {
    /** B: a message with a float, well signed by the v1–5 number rules but never sent; G: a good message on B, sent. */
    const badThenGood = async () => {
      const [head] = await t.fedgate.store.rooms.getForwardExtremities(roomId);
      const bad = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'Message 1', bad_val: 1.1 } }, { floats: true });
      const good = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'Message 2' }, prev_events: [bad.eventId], depth: (bad.pdu.depth as number) + 1 });
      t.evil.lie('get_missing_events', () => ({ status: 200, body: { events: [bad.pdu] } }));
      return { head: head!, bad, good };
    };
    const askedForMissing = () => t.evil.requests.filter((r) => r.segments[1] === 'get_missing_events').map((r) => r.body);

    it('the bad event fetched by get_missing_events is discarded with the reason, the good one is not accepted on it, and an event on the good one asks again', async () => {
      const { head, bad, good } = await badThenGood();
      expect(await onMessage(good)).toMatchObject({ kind: 'term' });
      expect(askedForMissing()).toEqual([expect.objectContaining({ earliest_events: [head], latest_events: [good.eventId] })]);
      const refused = await t.fedgate.store.audit.query({ reason: 'fetched_event_refused' });
      expect(refused.map((r) => r.details)).toEqual([{ refused: [{ eventId: bad.eventId, reason: expect.stringContaining('content.bad_val: cannot encode canonical JSON at $.content.bad_val: 1.1 is not an integer') }] }]);
      expect(await t.fedgate.store.events.get(bad.eventId)).toBeUndefined();
      expect(await t.fedgate.store.events.get(good.eventId)).toBeUndefined();
      expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([head]);

      const next = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'Message 3' }, prev_events: [good.eventId], depth: (good.pdu.depth as number) + 1 });
      t.evil.lie('get_missing_events', () => ({ status: 200, body: {} }));
      await onMessage(next);
      expect(askedForMissing()).toHaveLength(2);
      expect(askedForMissing()[1]).toMatchObject({ earliest_events: [head], latest_events: [next.eventId] });
      expect(await aliceCanSend(t.fedgate, roomId)).toBe(true);
    });

    it('the good event is not accepted either when the peer then serves the state at the bad event and the bad event itself', async () => {
      const { head, bad, good } = await badThenGood();
      const current = await currentState(t.fedgate, roomId);
      t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: [...current.values()], auth_chain_ids: [] } }));
      expect(await onMessage(good)).toMatchObject({ kind: 'term' });
      expect(t.evil.requests.some((r) => r.segments[1] === 'event' && r.segments[2] === bad.eventId)).toBe(true);
      expect(await t.fedgate.store.events.get(bad.eventId)).toBeUndefined();
      expect(await t.fedgate.store.events.get(good.eventId)).toBeUndefined();
      expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([head]);
    });
  });

  describe('sytest 52soft-fail', () => {
    let authBefore: string[] = [];
    /** J1 = mallory's join (the head), PL1 = alice forbids test.sf, M1 = a message by mallory on J1 (not on PL1). */
    const setUp = async () => {
      const [j1] = await t.fedgate.store.rooms.getForwardExtremities(roomId);
      // Mallory's server has not seen PL1: its events cite the power levels before it.
      authBefore = (await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: {} })).pdu.auth_events as string[];
      const plId = (await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.power_levels', ''))!;
      const pl = (await t.fedgate.store.events.get(plId))!.pdu.content as Record<string, unknown>;
      const pl1 = await t.fedgate.send(roomId, ALICE, 'm.room.power_levels', { ...pl, events: { ...((pl.events as object) ?? {}), 'test.sf': 50 } }, { stateKey: '' });
      expect(pl1.ok).toBe(true);
      const m1 = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'M1' }, prev_events: [j1!], auth_events: authBefore });
      expect((await t.evil.deliver(t.fedgate, [m1]))[0]).toMatchObject({ status: 'accepted' });
      return { pl1: (pl1 as { eventId: string }).eventId, m1 };
    };
    const sf = (body: string, prev: SignedEvent) => t.evil.eventIn(t.fedgate, roomId, { type: 'test.sf', sender: mallory(), content: { body }, prev_events: [prev.eventId], auth_events: authBefore, depth: (prev.pdu.depth as number) + 1 });

    it('a second soft-failed event on the same parent leaves the extremities at PL1 and M1', async () => {
      const { pl1, m1 } = await setUp();
      const [d1, d2] = await t.evil.deliver(t.fedgate, [await sf('SF1', m1), await sf('SF2', m1)]);
      expect([d1!.status, d2!.status]).toEqual(['soft_failed', 'soft_failed']);
      expect((await t.fedgate.store.rooms.getForwardExtremities(roomId)).sort()).toEqual([pl1, m1.eventId].sort());
    });

    it('an accepted event built on soft-failed ones (and on PL1) replaces every extremity', async () => {
      const { pl1, m1 } = await setUp();
      const sf1 = await sf('SF1', m1);
      const sf2 = await sf('SF2', sf1);
      expect((await t.evil.deliver(t.fedgate, [sf1, sf2])).map((d) => d.status)).toEqual(['soft_failed', 'soft_failed']);
      const m2 = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'M2' }, prev_events: [sf2.eventId, pl1], depth: (sf2.pdu.depth as number) + 1 });
      expect((await t.evil.deliver(t.fedgate, [m2]))[0]).toMatchObject({ status: 'accepted' });
      expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([m2.eventId]);
    });
  });
});
