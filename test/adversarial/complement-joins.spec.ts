// Issue 16 defect 7: Complement's join behaviours — unverifiable events in a send_join answer, failing over to
// the next via server, a banned user's hand-built send_join, and serving a third server's join into a room we
// joined from elsewhere.
import { generateSigningKey, signEvent, type Pdu } from '@fedgate/protocol';
import { stateMapKey } from '@fedgate/room-state';
import { MaliciousServer } from '@fedgate/testing';
import { arena, ALICE, currentState, type Arena } from './setup';

describe('complement: joins', () => {
  let t: Arena;
  beforeEach(async () => {
    t = await arena();
  });
  afterEach(() => t.network.close());

  const join = (roomId: string, via = ['evil.test']) => t.fedgate.resolver.remoteMembership.onCommand({ roomId, userId: ALICE, membership: 'join', via });
  const NAME = stateMapKey('m.room.name', '');

  describe('issue 16 defect 7: a send_join answer holding a state event that cannot be verified does not block the join', () => {
    const tampered: Array<[string, (pdu: Pdu) => Pdu]> = [
      ['missing signatures', (pdu) => ({ ...pdu, signatures: {} })],
      ['a bad signature', (pdu) => ({ ...pdu, signatures: { 'evil.test': { [Object.keys(pdu.signatures!['evil.test']!)[0]!]: 'A'.repeat(86) } } })],
      ['a signature by a key that cannot be had', (pdu) => ({ ...pdu, signatures: { 'evil.test': { 'ed25519:nowhere': 'A'.repeat(86) } } })],
    ];
    it.each(tampered)('%s: the join succeeds, the event is left out of state and audited', async (_what, tamper) => {
      const room = t.evil.createRoom('10');
      const name = t.evil.append(room, { type: 'm.room.name', state_key: '', sender: t.evil.user('boss'), content: { name: 'unverifiable' } });
      t.evil.lie('send_join', async (_req, honest) => {
        const answer = (await honest()).body as { state: Pdu[] };
        return { status: 200, body: { ...answer, state: answer.state.map((p) => (p.type === 'm.room.name' ? tamper(p) : p)) } };
      });
      expect(await join(room.roomId)).toMatchObject({ ok: true });
      expect((await currentState(t.fedgate, room.roomId)).get(NAME)).toBeUndefined();
      expect((await currentState(t.fedgate, room.roomId)).get(stateMapKey('m.room.member', ALICE))).toBeDefined();
      expect(JSON.stringify(await t.fedgate.store.audit.query({ destination: 'evil.test' }))).toContain(name.eventId);
    });

    it('a state event whose auth event is unverifiable (an earlier member event with a bad signature) does not block the join', async () => {
      const room = t.evil.createRoom('10');
      const boss = t.evil.user('boss');
      const charlie = t.evil.user('charlie');
      const badJoin = t.evil.append(room, { type: 'm.room.member', state_key: charlie, sender: charlie, content: { membership: 'join', displayname: 'badly signed' } });
      const leave = t.evil.append(room, { type: 'm.room.member', state_key: charlie, sender: charlie, content: { membership: 'leave' } });
      expect(leave.pdu.auth_events).toContain(badJoin.eventId);
      const forge = (p: Pdu) => ({ ...p, signatures: { 'evil.test': { [Object.keys(p.signatures!['evil.test']!)[0]!]: 'A'.repeat(86) } } });
      t.evil.lie('send_join', async (_req, honest) => {
        const answer = (await honest()).body as { state: Pdu[]; auth_chain: Pdu[] };
        const isBad = (p: Pdu) => p.type === 'm.room.member' && p.state_key === charlie && (p.content as { displayname?: string }).displayname === 'badly signed';
        return { status: 200, body: { ...answer, auth_chain: [...answer.auth_chain.filter((p) => !isBad(p)), forge(badJoin.pdu)] } };
      });
      expect(await join(room.roomId)).toMatchObject({ ok: true });
      const state = await currentState(t.fedgate, room.roomId);
      expect(state.get(stateMapKey('m.room.member', ALICE))).toBeDefined();
      expect(state.get(stateMapKey('m.room.member', boss))).toBeDefined();
    });
  });

  it('issue 16 defect 7: a via server that fails make_join (404) is passed over for the next one', async () => {
    const room = t.evil.createRoom('10');
    const dud = MaliciousServer.on(t.network, 'dud.test');
    dud.lie('make_join', () => ({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'Unknown room.' } }));
    expect(await join(room.roomId, ['dud.test', 'evil.test'])).toMatchObject({ ok: true });
    expect(dud.requests.map((r) => r.segments[1])).toContain('make_join');
    expect((await currentState(t.fedgate, room.roomId)).get(stateMapKey('m.room.member', ALICE))).toBeDefined();
  });

  it('issue 16 defect 7: a via server that is unreachable is passed over for the next one', async () => {
    const room = t.evil.createRoom('10');
    expect(await join(room.roomId, ['unreachable.test', 'evil.test'])).toMatchObject({ ok: true });
  });

  it('issue 16 defect 7: a banned user\'s hand-built send_join (make_join for another user, switched) is refused 403 and the ban stays', async () => {
    const roomId = await t.fedgate.createRoom(ALICE, '10');
    const mallory = t.evil.user('mallory');
    const ban = await t.fedgate.send(roomId, ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: mallory });
    expect(ban.ok).toBe(true);
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: t.evil.user('mallory2'), membership: 'join', origin: 'evil.test', supportedVersions: ['10'] });
    expect(made.ok).toBe(true);
    const template = (made as { event: Record<string, unknown> }).event;
    const switched = t.evil.sign({ ...template, sender: mallory, state_key: mallory } as never, '10');
    const reply = await t.evil.sendJoin(t.fedgate, roomId, switched, '10');
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
    const member = (await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.member', mallory))!;
    expect((await t.fedgate.store.events.get(member))!.pdu.content).toMatchObject({ membership: 'ban' });
  });

  it('issue 16 defect 7: a third server joins through us a room we joined from elsewhere (its host no longer serving joins)', async () => {
    const room = t.evil.createRoom('10');
    expect(await join(room.roomId)).toMatchObject({ ok: true });
    t.evil.lie('make_join', () => ({ status: 502, body: {} }));
    t.evil.lie('send_join', () => ({ status: 502, body: {} }));
    const third = MaliciousServer.on(t.network, 'third.test');
    const joined = await third.joinRoom(t.fedgate, room.roomId, 'bob');
    const state = await currentState(t.fedgate, room.roomId);
    expect(state.get(stateMapKey('m.room.member', third.user('bob')))).toBe(joined.eventId);
    expect(await t.fedgate.store.rooms.getJoinedServers(room.roomId)).toEqual(expect.arrayContaining(['evil.test', 'fg.test', 'third.test']));
  });

  it('issue 16 defect 7: a send_join answer event re-signed by a key the host does not own is not taken as our join', async () => {
    const room = t.evil.createRoom('10');
    const stranger = generateSigningKey('x');
    t.evil.lie('send_join', async (_req, honest) => {
      const answer = (await honest()).body as { event: Record<string, unknown> };
      return { status: 200, body: { ...answer, event: signEvent({ ...answer.event, content: { membership: 'join', displayname: 'changed by the host' } }, '10', 'evil.test', stranger) } };
    });
    const reply = await join(room.roomId);
    expect(reply).toMatchObject({ ok: true });
    const record = await t.fedgate.store.events.get((reply as { eventId: string }).eventId);
    expect(record!.pdu.content).toEqual({ membership: 'join' });
  });

  it('complement TestFederationRedactSendsWithoutEvent: a redaction of an event we never received is still created and sent', async () => {
    const room = t.evil.createRoom('10');
    expect(await join(room.roomId)).toMatchObject({ ok: true });
    const unseen = t.evil.append(room, { type: 'm.room.message', sender: t.evil.user('boss'), content: { body: '666' } });
    const reply = await t.fedgate.send(room.roomId, ALICE, 'm.room.redaction', { reason: 'reasons', redacts: unseen.eventId });
    expect(reply.ok).toBe(true);
    const entry = t.fedgate.published.find((e) => e.eventId === (reply as { eventId: string }).eventId)!;
    expect(entry).toMatchObject({ outcome: 'accepted', local: true, joinedServers: expect.arrayContaining(['evil.test']) });
    expect(entry.event).toMatchObject({ type: 'm.room.redaction', redacts: unseen.eventId });
  });

  it('sytest "Outbound federation passes make_join failures through to the client": the remote errcode and status reach the caller', async () => {
    const room = t.evil.createRoom('10');
    t.evil.lie('make_join', () => ({ status: 400, body: { errcode: 'M_TEST_ERROR_CODE', error: 'denied!' } }));
    expect(await join(room.roomId)).toMatchObject({ ok: false, errcode: 'M_TEST_ERROR_CODE', status: 400, error: expect.stringContaining('denied!') });
    expect(await t.fedgate.store.rooms.get(room.roomId)).toBeUndefined();
  });
});
