import { roomVersionRules } from '@fedgate/protocol';
import { stateMapKey, toRoomEvent } from '@fedgate/room-state';
import { EventBuilder, finishEvent } from './event-builder';
import { recordFor } from './room-timeline';
import { TestNetwork, type TestServer } from './testing/test-server';

describe('state-resolver', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
  });
  afterEach(() => network.close());

  const current = async (server: TestServer, roomId: string) => (await server.resolver.reader.currentState(roomId))!;

  describe.each(['12', '10', '1'])('local events in a version %s room', (version) => {
    it('creates a room, sends messages and state, and publishes each event to the room log', async () => {
      const roomId = await a.createRoom('@alice:a.test', version);
      if (version === '12') expect(roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
      else expect(roomId).toMatch(/:a\.test$/);
      const msg = await a.send(roomId, '@alice:a.test', 'm.room.message', { msgtype: 'm.text', body: 'hello' });
      expect(msg.ok).toBe(true);
      const name = await a.send(roomId, '@alice:a.test', 'm.room.name', { name: 'Lobby' }, { stateKey: '' });
      expect(name.ok).toBe(true);

      const state = await current(a, roomId);
      expect(state.get(stateMapKey('m.room.name', ''))).toBe(name.ok && name.eventId);
      expect(state.get(stateMapKey('m.room.member', '@alice:a.test'))).toBeDefined();
      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([name.ok && name.eventId]);
      expect(await a.store.rooms.getJoinedServers(roomId)).toEqual(['a.test']);
      const logged = a.published.filter((e) => e.roomId === roomId);
      expect(logged.map((e) => e.outcome)).toEqual(Array(7).fill('accepted'));
      expect(logged.every((e) => e.local)).toBe(true);
      expect(logged.at(-1)!.stateDelta).toEqual({ [stateMapKey('m.room.name', '')]: name.ok && name.eventId });
      const stored = (await a.store.events.get(msg.ok ? msg.eventId : ''))!;
      expect(stored.depth).toBe(6);
      expect(stored.pdu.signatures['a.test']).toBeDefined();
    });
  });

  it('answers a retried command with the same event (idempotent on sender and txnId)', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    const first = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'once' }, { txnId: 'txn1' });
    const again = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'once' }, { txnId: 'txn1' });
    const other = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'once' }, { txnId: 'txn2' });
    expect(again).toEqual(first);
    expect(other.ok && first.ok && other.eventId !== first.eventId).toBe(true);
    expect(a.published.filter((e) => e.event.type === 'm.room.message')).toHaveLength(2);
  });

  it('refuses an event its sender may not send, with the auth rule, and stores nothing', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    const before = a.published.length;
    const reply = await a.send(roomId, '@carol:a.test', 'm.room.message', { body: 'not joined' });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
    expect(!reply.ok && reply.error).toMatch(/not joined/);
    expect(a.published.length).toBe(before);
    expect(await a.send('!nope:a.test', '@alice:a.test', 'm.room.message', {})).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND' });
    expect(await a.send(roomId, '@alice:b.test', 'm.room.message', {})).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  async function joinedRoom(version = '12') {
    const roomId = await a.createRoom('@alice:a.test', version);
    const joined = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] });
    expect(joined).toMatchObject({ ok: true, roomId });
    return { roomId, joinId: joined.ok ? joined.eventId : '' };
  }

  describe.each(['12', '10'])('remote join in a version %s room', (version) => {
    it('joins through make_join/send_join with genuinely signed state; both servers agree on the state', async () => {
      const { roomId, joinId } = await joinedRoom(version);
      const stateA = await current(a, roomId);
      const stateB = await current(b, roomId);
      expect(stateA.get(stateMapKey('m.room.member', '@bob:b.test'))).toBe(joinId);
      expect([...stateB].sort()).toEqual([...stateA].sort());
      expect(await a.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test']);
      expect(await b.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test']);
      expect(await b.store.rooms.getForwardExtremities(roomId)).toEqual([joinId]);
      // A relays the join it accepted through send_join (local: egress sends it to the room).
      expect(a.published.find((e) => e.eventId === joinId)).toMatchObject({ outcome: 'accepted', local: true });
      expect(b.published.find((e) => e.eventId === joinId)).toMatchObject({ outcome: 'accepted', local: true });

      // B's user talks; A accepts it through the inbound path.
      const msg = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'hi from b' });
      expect(msg.ok).toBe(true);
      const committed = await a.receive(b, msg.ok ? msg.eventId : '');
      expect(committed).toMatchObject({ status: 'accepted' });
      expect(a.published.find((e) => e.eventId === (msg.ok && msg.eventId))).toMatchObject({ local: false, outcome: 'accepted' });
    });
  });

  it('refuses make_join for an unknown room, an unsupported version and an invite-only room', async () => {
    const roomId = await a.createRoom('@alice:a.test', '12');
    const h = a.resolver.handshakes;
    expect(await h.makeMembership({ roomId: '!missing:a.test', userId: '@bob:b.test', membership: 'join', origin: 'b.test', supportedVersions: ['12'] })).toMatchObject({ errcode: 'M_NOT_FOUND', status: 404 });
    expect(await h.makeMembership({ roomId, userId: '@bob:b.test', membership: 'join', origin: 'b.test', supportedVersions: ['9', '10'] })).toMatchObject({ errcode: 'M_INCOMPATIBLE_ROOM_VERSION', status: 400 });
    expect(await h.makeMembership({ roomId, userId: '@bob:c.test', membership: 'join', origin: 'b.test', supportedVersions: ['12'] })).toMatchObject({ errcode: 'M_FORBIDDEN' });
    await a.send(roomId, '@alice:a.test', 'm.room.join_rules', { join_rule: 'invite' }, { stateKey: '' });
    expect(await h.makeMembership({ roomId, userId: '@bob:b.test', membership: 'join', origin: 'b.test', supportedVersions: ['12'] })).toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  it('persists an inbound event that fails auth as rejected with its reason', async () => {
    const { roomId } = await joinedRoom();
    // B's user sets the room name, but B's copy of power levels gives state_default 50 and bob has 0.
    const refused = await b.send(roomId, '@bob:b.test', 'm.room.name', { name: 'mine' }, { stateKey: '' });
    expect(refused).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    // A malicious B builds it anyway.
    const forged = await forgeEvent(b, roomId, { sender: '@bob:b.test', type: 'm.room.name', state_key: '', content: { name: 'mine' } });
    const committed = await a.receive(b, forged);
    expect(committed).toMatchObject({ status: 'rejected' });
    const stored = (await a.store.events.get(forged))!;
    expect(stored.status).toBe('rejected');
    expect(stored.reason).toMatch(/needs power 50/);
    expect((await a.store.events.byStatus(roomId, 'rejected', 10)).map((e) => e.eventId)).toEqual([forged]);
    expect((await current(a, roomId)).get(stateMapKey('m.room.name', ''))).toBeUndefined();
  });

  it('an accepted event built on a rejected one makes what the rejected one was built on obsolete as an extremity', async () => {
    const { roomId } = await joinedRoom();
    const [before] = await a.store.rooms.getForwardExtremities(roomId);
    // B forges a name change bob may not make, then builds an ordinary message on top of it.
    const forged = await forgeEvent(b, roomId, { sender: '@bob:b.test', type: 'm.room.name', state_key: '', content: { name: 'mine' } });
    const bTips = await b.store.rooms.getForwardExtremities(roomId);
    const atTip = (await b.store.state.getForEvent(bTips[0]!))!;
    await b.store.state.setForEvent(forged, { before: atTip.after, after: atTip.after });
    await b.store.rooms.updateForwardExtremities(roomId, { add: [forged], remove: bTips });
    const message = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'on top of a forgery' });
    expect(message.ok).toBe(true);
    expect(await a.receive(b, forged)).toMatchObject({ status: 'rejected' });
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([before]);
    expect(await a.receive(b, message.ok ? message.eventId : '')).toMatchObject({ status: 'accepted' });
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([message.ok && message.eventId]);
  });

  it('soft-fails an event that passes at its prev events but not against current state', async () => {
    const { roomId } = await joinedRoom();
    const ban = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'ban' }, { stateKey: '@bob:b.test' });
    expect(ban.ok).toBe(true);
    // B has not heard of the ban: its event builds on the join.
    const late = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'am I banned?' });
    const committed = await a.receive(b, late.ok ? late.eventId : '');
    expect(committed).toMatchObject({ status: 'soft_failed' });
    const stored = (await a.store.events.get(late.ok ? late.eventId : ''))!;
    expect(stored.reason).toMatch(/current state/);
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([ban.ok && ban.eventId]);
    expect(a.published.find((e) => e.eventId === (late.ok && late.eventId))?.outcome).toBe('soft-failed');
  });

  it('fills a gap with get_missing_events when events arrive out of order', async () => {
    const { roomId } = await joinedRoom();
    const ids: string[] = [];
    for (const body of ['one', 'two', 'three']) {
      const r = await b.send(roomId, '@bob:b.test', 'm.room.message', { body });
      ids.push(r.ok ? r.eventId : '');
    }
    await a.receive(b, ids[2]);
    for (const id of ids) expect((await a.store.events.get(id))?.status).toBe('accepted');
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([ids[2]]);
    expect(network.requests.filter((r) => r.from === 'a.test' && r.path.includes('get_missing_events'))).toHaveLength(1);
    // The log carries them in DAG order.
    expect(a.published.filter((e) => ids.includes(e.eventId)).map((e) => e.eventId)).toEqual(ids);
  });

  it('refuses a fetched event with a bad signature, records why, and still closes the gap', async () => {
    const { roomId } = await joinedRoom();
    const ids: string[] = [];
    for (const body of ['one', 'two']) {
      const r = await b.send(roomId, '@bob:b.test', 'm.room.message', { body });
      ids.push(r.ok ? r.eventId : '');
    }
    const route = network.route.bind(network);
    network.route = async (from, to, method, p, body, options) => {
      const answer = await route(from, to, method, p, body, options);
      if (!p.includes('get_missing_events')) return answer;
      const events = (answer.body as { events: Array<Record<string, unknown>> }).events;
      return { ...answer, body: { events: events.map((e) => ({ ...e, signatures: { 'b.test': { [b.key.keyId]: 'AAAA' } } })) } };
    };
    expect(await a.receive(b, ids[1])).toMatchObject({ status: 'accepted' });
    const audit = await a.store.audit.query({ reason: 'fetched_event_refused' });
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit[0].details)).toContain(ids[0]);
    expect((await a.store.events.get(ids[0]))?.outlier).toBe(true);
  });

  it('fetches the state at a missing prev event with state_ids when the gap stays open', async () => {
    await network.close();
    network = new TestNetwork();
    a = await network.add('a.test', { gapFill: { maxRounds: 0, maxEvents: 0, maxSingleFetches: 50 } });
    b = await network.add('b.test');
    const { roomId } = await joinedRoom();
    const topic = await b.send(roomId, '@bob:b.test', 'm.room.member', { membership: 'join', displayname: 'Bob' }, { stateKey: '@bob:b.test' });
    const after = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'after a gap' });
    const committed = await a.receive(b, after.ok ? after.eventId : '');
    expect(committed).toMatchObject({ status: 'accepted' });
    const prev = (await a.store.events.get(topic.ok ? topic.eventId : ''))!;
    expect(prev.outlier).toBe(true);
    expect(network.requests.some((r) => r.from === 'a.test' && r.path.includes('/state_ids/'))).toBe(true);
    expect((await current(a, roomId)).get(stateMapKey('m.room.member', '@bob:b.test'))).toBe(topic.ok && topic.eventId);
  });

  it('does not apply a redelivered PDU twice', async () => {
    const { roomId } = await joinedRoom();
    const msg = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'twice?' });
    const id = msg.ok ? msg.eventId : '';
    expect(await a.receive(b, id)).toMatchObject({ status: 'accepted' });
    expect(await a.receive(b, id)).toBeUndefined();
    expect(a.published.filter((e) => e.eventId === id)).toHaveLength(1);
  });

  it('naks while the origin is unreachable and settles once it is back', async () => {
    const { roomId } = await joinedRoom();
    const m1 = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'one' });
    const m2 = await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'two' });
    const record = (await b.store.events.get(m2.ok ? m2.eventId : ''))!;
    const message = {
      data: { eventId: record.eventId, roomId, roomVersion: '12', origin: 'b.test', txnId: 't', receivedAt: 0, redacted: false, pdu: record.pdu as never },
      deliveryCount: 1,
      working: () => undefined,
    } as never;
    network.down.add('b.test');
    expect(await a.resolver.inbound.onMessage(message)).toMatchObject({ kind: 'nak' });
    expect(await a.store.events.get(record.eventId)).toBeUndefined();
    network.down.delete('b.test');
    expect(await a.resolver.inbound.onMessage(message)).toEqual({ kind: 'ack' });
    expect((await a.store.events.get(m1.ok ? m1.eventId : ''))?.status).toBe('accepted');
  });

  it('dead-letters a PDU for a room it does not know, with the reason', async () => {
    const outcome = await a.resolver.inbound.onMessage({
      data: { eventId: '$x', roomId: '!unknown:b.test', roomVersion: '10', origin: 'b.test', txnId: 't', receivedAt: 0, redacted: false, pdu: {} },
      deliveryCount: 1,
      working: () => undefined,
    } as never);
    expect(outcome).toMatchObject({ kind: 'term', reason: expect.stringMatching(/not known here/) });
  });

  it('invites a remote user: the invitee server countersigns, and learns of the invite', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    const invite = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@bob:b.test' });
    expect(invite.ok).toBe(true);
    const id = invite.ok ? invite.eventId : '';
    const stored = (await a.store.events.get(id))!;
    expect(Object.keys(stored.pdu.signatures).sort()).toEqual(['a.test', 'b.test']);
    const atB = b.published.find((e) => e.eventId === id)!;
    expect(atB).toMatchObject({ outcome: 'accepted', local: false });
    expect((atB.event.unsigned as { invite_room_state: Array<{ type: string }> }).invite_room_state.map((s) => s.type)).toContain('m.room.create');
    expect((await b.store.events.get(id))?.outlier).toBe(true);
    // Then bob accepts by joining through a.
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
  });

  it('refuses an invite the remote server declines, with its reason', async () => {
    const roomId = await a.createRoom('@alice:a.test', '12');
    network.servers.get('b.test')!.resolver.handshakes.receiveInvite = async () => ({ ok: false, errcode: 'M_FORBIDDEN', error: 'not taking invites', status: 403 });
    const reply = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@bob:b.test' });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect(!reply.ok && reply.error).toMatch(/not taking invites/);
  });

  it('converges when both servers change the same state concurrently', async () => {
    const { roomId } = await joinedRoom();
    const pl = await a.send(roomId, '@alice:a.test', 'm.room.power_levels', { users: { '@bob:b.test': 50 }, state_default: 50, events_default: 0, users_default: 0, ban: 50, kick: 50, redact: 50, invite: 0 }, { stateKey: '' });
    expect(await b.receive(a, pl.ok ? pl.eventId : '')).toMatchObject({ status: 'accepted' });
    const nameA = await a.send(roomId, '@alice:a.test', 'm.room.name', { name: 'from a' }, { stateKey: '' });
    const nameB = await b.send(roomId, '@bob:b.test', 'm.room.name', { name: 'from b' }, { stateKey: '' });
    expect(await a.receive(b, nameB.ok ? nameB.eventId : '')).toMatchObject({ status: 'accepted' });
    expect(await b.receive(a, nameA.ok ? nameA.eventId : '')).toMatchObject({ status: 'accepted' });
    const stateA = await current(a, roomId);
    expect([...(await current(b, roomId))].sort()).toEqual([...stateA].sort());
    expect([nameA.ok && nameA.eventId, nameB.ok && nameB.eventId]).toContain(stateA.get(stateMapKey('m.room.name', '')));
    expect((await a.store.rooms.getForwardExtremities(roomId)).sort()).toEqual((await b.store.rooms.getForwardExtremities(roomId)).sort());
    // The next event closes the fork on both sides.
    const merge = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'merged' });
    expect((await a.store.events.get(merge.ok ? merge.eventId : ''))!.prevEventIds).toHaveLength(2);
    expect(await b.receive(a, merge.ok ? merge.eventId : '')).toMatchObject({ status: 'accepted' });
    expect(await b.store.rooms.getForwardExtremities(roomId)).toEqual([merge.ok && merge.eventId]);
  });

  it('joins a room another local user is in with a local event, not a handshake', async () => {
    const { roomId } = await joinedRoom();
    const before = network.requests.length;
    const reply = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bert:b.test', membership: 'join', via: ['a.test'] });
    expect(reply).toMatchObject({ ok: true, roomId });
    expect(network.requests.length).toBe(before);
    expect((await current(b, roomId)).get(stateMapKey('m.room.member', '@bert:b.test'))).toBe(reply.ok && reply.eventId);
  });

  it('rejects a remote invite through make_leave/send_leave', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    const invite = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@bob:b.test' });
    expect(invite.ok).toBe(true);
    const reply = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'leave', via: ['a.test'] });
    expect(reply).toMatchObject({ ok: true, roomId });
    const leaveId = reply.ok ? reply.eventId : '';
    expect((await current(a, roomId)).get(stateMapKey('m.room.member', '@bob:b.test'))).toBe(leaveId);
    expect((await b.store.events.get(leaveId))).toMatchObject({ outlier: true, status: 'accepted' });
    expect(b.published.find((e) => e.eventId === leaveId)).toMatchObject({ outcome: 'accepted', local: false });
    expect(a.published.find((e) => e.eventId === leaveId)).toMatchObject({ outcome: 'accepted', local: true });
  });

  it('knocks through make_knock/send_knock and gets the stripped state', async () => {
    const roomId = await a.createRoom('@alice:a.test', '12', [{ type: 'm.room.name', stateKey: '', content: { name: 'Knock here' } }]);
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'knock', via: ['a.test'] })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    await a.send(roomId, '@alice:a.test', 'm.room.join_rules', { join_rule: 'knock' }, { stateKey: '' });
    const reply = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'knock', via: ['a.test'] });
    expect(reply).toMatchObject({ ok: true });
    const knockId = reply.ok ? reply.eventId : '';
    expect((await current(a, roomId)).get(stateMapKey('m.room.member', '@bob:b.test'))).toBe(knockId);
    const atB = b.published.find((e) => e.eventId === knockId)!;
    const stripped = (atB.event.unsigned as { knock_room_state: Array<{ type: string; content: { name?: string } }> }).knock_room_state;
    expect(stripped.find((s) => s.type === 'm.room.name')?.content.name).toBe('Knock here');
  });

  it('lets a member of an allowed room join a restricted room, vouched for by a local member', async () => {
    const { roomId: lobby } = await joinedRoom();
    const restricted = await a.createRoom('@alice:a.test', '12', [
      { type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: lobby }] } },
    ]);
    const reply = await b.resolver.remoteMembership.onCommand({ roomId: restricted, userId: '@bob:b.test', membership: 'join', via: ['a.test'] });
    expect(reply).toMatchObject({ ok: true });
    const join = (await a.store.events.get(reply.ok ? reply.eventId : ''))!;
    expect(join.status).toBe('accepted');
    expect(join.pdu.content.join_authorised_via_users_server).toBe('@alice:a.test');
    expect(Object.keys(join.pdu.signatures).sort()).toEqual(['a.test', 'b.test']);
    // Someone in no allowed room is refused.
    expect(await b.resolver.remoteMembership.onCommand({ roomId: restricted, userId: '@eve:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  it('leaves through send_leave', async () => {
    const { roomId } = await joinedRoom();
    const left = await b.send(roomId, '@bob:b.test', 'm.room.member', { membership: 'leave' }, { stateKey: '@bob:b.test' });
    expect(left.ok).toBe(true);
    expect(await a.receive(b, left.ok ? left.eventId : '')).toMatchObject({ status: 'accepted' });
    expect(await a.store.rooms.getJoinedServers(roomId)).toEqual(['a.test']);
  });
});

async function forgeEvent(server: TestServer, roomId: string, fields: Record<string, unknown>): Promise<string> {
  const rules = roomVersionRules('12');
  const signer = { serverName: server.name, signingKey: server.key };
  const state = (await server.resolver.reader.currentState(roomId))!;
  const draft = { roomId, sender: fields.sender as string, type: fields.type as string, stateKey: fields.state_key as string, content: fields.content as Record<string, unknown> };
  const built = finishEvent(await new EventBuilder(server.store, signer).template(draft, rules, state), rules, signer);
  await server.store.events.append(recordFor(built.eventId, roomId, built.pdu, toRoomEvent(built.pdu, built.eventId), 'accepted', undefined, false));
  return built.eventId;
}
