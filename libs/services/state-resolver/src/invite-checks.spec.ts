// Issue 18 defects 3 and 9: invites from other servers, as a lying peer sends them.
import { roomVersionRules, type Pdu } from '@fedgate/protocol';
import { createEventIdForRoom, stateMapKey } from '@fedgate/room-state';
import { CommandRefusal } from './errors';
import { EventBuilder } from './event-builder';
import { InviteChecks } from './invite-checks';
import { InviteRateLimit } from './invite-rate-limit';
import { TEST_APP_SERVICE, TestNetwork, type TestServer } from './testing/test-server';

describe('receiving an invite (issue 18)', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
    c = await network.add('c.test');
  });
  afterEach(() => network.close());

  const current = async (server: TestServer, roomId: string) => (await server.resolver.reader.currentState(roomId))!;
  const membershipAt = async (server: TestServer, roomId: string, userId: string) => {
    const id = (await current(server, roomId)).get(stateMapKey('m.room.member', userId));
    return id ? (await server.store.events.get(id))?.pdu.content.membership : undefined;
  };
  /** An invite event `signer` builds on top of `holder`'s view of the room. */
  const inviteBuiltBy = async (signer: TestServer, holder: TestServer, roomId: string, sender: string, invitee: string, version: string) => {
    const builder = new EventBuilder(holder.store, { serverName: signer.name, signingKey: signer.key });
    return builder.build({ roomId, sender, type: 'm.room.member', stateKey: invitee, content: { membership: 'invite' } }, roomVersionRules(version), await current(holder, roomId));
  };
  const receive = (server: TestServer, origin: string, roomId: string, built: { eventId: string; pdu: Pdu }, version: string, inviteRoomState: unknown[]) =>
    server.resolver.handshakes.receiveInvite({ roomId, eventId: built.eventId, roomVersion: version, origin, event: built.pdu as never, inviteRoomState: inviteRoomState as never });
  const fullPdu = async (server: TestServer, eventId: string) => (await server.store.events.get(eventId))!.pdu;

  async function roomWithBob(version = '12') {
    const roomId = await a.createRoom('@alice:a.test', version);
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    return roomId;
  }

  describe('defect 3: forged invites into a room we are in', () => {
    it('refuses an invite from a server outside the room for a joined local user; the membership stays join', async () => {
      const roomId = await roomWithBob();
      const forged = await inviteBuiltBy(c, b, roomId, '@mallory:c.test', '@bob:b.test', '12');
      const publishedBefore = b.published.length;
      const createPdu = await fullPdu(b, createEventIdForRoom(roomId));
      const reply = await receive(b, 'c.test', roomId, forged, '12', [createPdu]);
      expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
      expect(await b.store.events.get(forged.eventId)).toBeUndefined();
      expect(b.published.length).toBe(publishedBefore);
      expect(await membershipAt(b, roomId, '@bob:b.test')).toBe('join');
    });

    it('still takes an invite a member sends for another local user of a room we are in', async () => {
      const roomId = await roomWithBob();
      const invite = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@carol:b.test' });
      expect(invite).toMatchObject({ ok: true });
    });
  });

  describe('defect 3: invite_room_state is checked and pruned (spec v1.16)', () => {
    it('passes on only stripped state, from room state given as full PDUs of the room version', async () => {
      const roomId = await a.createRoom('@alice:a.test', '12');
      const invite = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@carol:b.test', '12');
      const state = await current(a, roomId);
      const create = { ...(await fullPdu(a, createEventIdForRoom(roomId))), unsigned: { secret: 'not for the application service' } };
      const joinRules = await fullPdu(a, state.get(stateMapKey('m.room.join_rules', ''))!);
      expect(await receive(b, 'a.test', roomId, invite, '12', [create, joinRules])).toMatchObject({ ok: true });
      const published = b.published.find((entry) => entry.eventId === invite.eventId)!;
      const stripped = (published.event.unsigned as { invite_room_state: Record<string, unknown>[] }).invite_room_state;
      expect(stripped.map((e) => e.type).sort()).toEqual(['m.room.create', 'm.room.join_rules']);
      for (const entry of stripped) expect(Object.keys(entry).sort()).toEqual(['content', 'sender', 'state_key', 'type']);
    });

    it.each([
      ['without the create event', async (_roomId: string) => []],
      ['with stripped entries only (a version 12 room needs PDUs)', async () => [{ type: 'm.room.create', state_key: '', sender: '@alice:a.test', content: {} }]],
      ['with the create event of another room', async () => [await fullPdu(a, createEventIdForRoom(await a.createRoom('@alice:a.test', '12')))]],
      [
        'with a tampered create event (bad signature)',
        async (roomId: string) => {
          const pdu = await fullPdu(a, createEventIdForRoom(roomId));
          return [{ ...pdu, signatures: { 'a.test': { [Object.keys(pdu.signatures['a.test'])[0]]: 'A'.repeat(86) } } }];
        },
      ],
    ])('refuses a version 12 invite %s with M_INVALID_PARAM', async (_name, state) => {
      const roomId = await a.createRoom('@alice:a.test', '12');
      const invite = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@carol:b.test', '12');
      const reply = await receive(b, 'a.test', roomId, invite, '12', await state(roomId));
      expect(reply).toMatchObject({ ok: false, errcode: 'M_INVALID_PARAM', status: 400 });
      expect(await b.store.events.get(invite.eventId)).toBeUndefined();
    });

    it('takes stripped state from older servers in a version 10 room, pruned and bounded', async () => {
      const roomId = await a.createRoom('@alice:a.test', '10');
      const invite = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@carol:b.test', '10');
      const entries = [
        { type: 'm.room.name', state_key: '', sender: '@alice:a.test', content: { name: 'n' }, extra: 'dropped' },
        'not an object',
        { type: 'm.room.topic', content: { topic: 'no state key' } },
        ...Array.from({ length: 80 }, (_, i) => ({ type: 'x.filler', state_key: String(i), sender: '@alice:a.test', content: {} })),
      ];
      expect(await receive(b, 'a.test', roomId, invite, '10', entries)).toMatchObject({ ok: true });
      const stripped = (b.published.find((entry) => entry.eventId === invite.eventId)!.event.unsigned as { invite_room_state: Record<string, unknown>[] }).invite_room_state;
      expect(stripped[0]).toEqual({ type: 'm.room.name', state_key: '', sender: '@alice:a.test', content: { name: 'n' } });
      expect(stripped.length).toBeLessThanOrEqual(50);
    });

    it('our own invites carry full PDUs, which the receiving fedgate accepts in a version 12 room', async () => {
      const roomId = await a.createRoom('@alice:a.test', '12');
      expect(await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@carol:b.test' })).toMatchObject({ ok: true });
    });
  });

  describe('defect 9: invites for made-up local users', () => {
    it('refuses an invite for a user no application service claims and nobody registered', async () => {
      await b.store.appServices.register({ ...TEST_APP_SERVICE, namespaces: { users: [{ exclusive: true, regex: '@chat_.*:b\\.test' }], aliases: [], rooms: [] } });
      const roomId = await a.createRoom('@alice:a.test', '12');
      const invite = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@made_up_42:b.test', '12');
      const reply = await receive(b, 'a.test', roomId, invite, '12', [await fullPdu(a, createEventIdForRoom(roomId))]);
      expect(reply).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND', status: 404 });
      expect(await b.store.events.get(invite.eventId)).toBeUndefined();
      const claimed = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@chat_carol:b.test', '12');
      expect(await receive(b, 'a.test', roomId, claimed, '12', [await fullPdu(a, createEventIdForRoom(roomId))])).toMatchObject({ ok: true });
    });

    it('rate-limits the invites one server sends, with retry_after_ms', async () => {
      let now = 1_000_000;
      const checks = new InviteChecks(b.store, b.resolver.timeline, network.keyRing(), 'b.test', new InviteRateLimit({ burst: 2, perSecond: 1, maxOrigins: 10, now: () => now }));
      const roomId = await a.createRoom('@alice:a.test', '10');
      const invite = await inviteBuiltBy(a, a, roomId, '@alice:a.test', '@carol:b.test', '10');
      const rules = roomVersionRules('10');
      await checks.check('a.test', invite.pdu, invite.eventId, rules, []);
      await checks.check('a.test', invite.pdu, invite.eventId, rules, []);
      const third = await checks.check('a.test', invite.pdu, invite.eventId, rules, []).catch((err: unknown) => err);
      expect(third).toBeInstanceOf(CommandRefusal);
      expect((third as CommandRefusal).toReply()).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', status: 429, retry_after_ms: 1000 });
      // Another server has its own budget; the first gets its back with time.
      await expect(checks.check('c.test', invite.pdu, invite.eventId, rules, [])).resolves.toEqual([]);
      now += 1000;
      await expect(checks.check('a.test', invite.pdu, invite.eventId, rules, [])).resolves.toEqual([]);
    });
  });
});
