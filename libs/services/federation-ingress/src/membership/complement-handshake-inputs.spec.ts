// Issue 16: Complement's input checks on send_join / send_leave / invite v1, and re-sent PDUs on /send.
import type { InboundPdu, MakeMembershipCommand, MakeMembershipReply, ReceiveInviteCommand, ReceiveInviteReply, SendMembershipCommand, SendMembershipReply } from '@fedgate/bus';
import { computeEventId, signEvent, type JsonObject } from '@fedgate/protocol';
import { INGRESS_NAME, refusal, seedRoom, signedEvent, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';

const ROOM = '!handshakes:ingress.test';

describe('complement: federation handshake inputs', () => {
  let h: IngressHarness;
  let head: string;
  const sent: SendMembershipCommand[] = [];
  const invites: ReceiveInviteCommand[] = [];
  const made: MakeMembershipCommand[] = [];
  let stop: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    h = await startIngress();
    ({ eventIds: [head] } = { eventIds: (await seedRoom(h, ROOM, [h.remote.user('alice')])).eventIds.slice(-1) });
    const a = await h.bus.serve<SendMembershipCommand, SendMembershipReply>(h.topology.sendMembership.command, (command) => {
      sent.push(command);
      return { ok: true, roomVersion: '10', event: command.event, state: [], authChain: [] };
    });
    const b = await h.bus.serve<ReceiveInviteCommand, ReceiveInviteReply>(h.topology.receiveInvite.command, (command) => {
      invites.push(command);
      return { ok: true, event: { ...command.event, signed_here: true } };
    });
    const c = await h.bus.serve<MakeMembershipCommand, MakeMembershipReply>(h.topology.makeMembership.command, (command) => {
      made.push(command);
      return { ok: true, roomVersion: '10', event: { sender: command.userId } };
    });
    stop = [() => a.stop(), () => b.stop(), () => c.stop()];
  }, 60_000);

  afterAll(async () => {
    for (const s of stop) await s();
    await h.close();
  });

  const membership = (membership: 'join' | 'leave', stateKey: string, sender: string) =>
    signedEvent({ room_id: ROOM, type: 'm.room.member', state_key: stateKey, sender, depth: 9, prev_events: [head], content: { membership } }, h.remote.serverName, h.remote.key);
  const path = (kind: 'join' | 'leave', v: string, id: string, room = ROOM) => `/_matrix/federation/${v}/send_${kind}/${encodeURIComponent(room)}/${encodeURIComponent(id)}`;
  const put = (p: string, body: unknown) => h.remote.client().putJson<any>(INGRESS_NAME, p, body as JsonObject);

  describe.each(['join', 'leave'] as const)('send_%s', (kind) => {
    it(`issue 16 defect 6: send_${kind} whose state_key is not its sender is 400 M_BAD_JSON, not 403`, async () => {
      const e = membership(kind, h.remote.user('victim'), h.remote.user('alice'));
      for (const v of ['v1', 'v2']) expect(await refusal(put(path(kind, v, e.eventId), e.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    });

    it(`issue 16 defect 6: send_${kind} input checks: wrong membership, a message, a member event without state_key 400, other server's user 403, path ID mismatch 400, unknown room 404, other room 400, bad signature 403`, async () => {
      const before = sent.length;
      const wrongMembership = membership(kind === 'join' ? 'leave' : 'join', h.remote.user('alice'), h.remote.user('alice'));
      expect(await refusal(put(path(kind, 'v2', wrongMembership.eventId), wrongMembership.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const foreignUser = signedEvent({ room_id: ROOM, type: 'm.room.member', state_key: h.other.user('olga'), sender: h.other.user('olga'), content: { membership: kind } }, h.other.serverName, h.other.key);
      expect(await refusal(put(path(kind, 'v2', foreignUser.eventId), foreignUser.pdu))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      const ok = membership(kind, h.remote.user('bob'), h.remote.user('bob'));
      expect(await refusal(put(path(kind, 'v2', '$someOtherEvent'), ok.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      expect(await refusal(put(path(kind, 'v2', ok.eventId, '!unknown:ingress.test'), ok.pdu))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
      const otherRoom = '!other:ingress.test';
      await seedRoom(h, otherRoom, []).catch(() => undefined);
      expect(await refusal(put(path(kind, 'v2', ok.eventId, otherRoom), ok.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const regular = signedEvent({ room_id: ROOM, type: 'm.room.message', sender: h.remote.user('bob'), content: { body: 'bzz' } }, h.remote.serverName, h.remote.key);
      expect(await refusal(put(path(kind, 'v2', regular.eventId), regular.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const stateless = signedEvent({ room_id: ROOM, type: 'm.room.member', sender: h.remote.user('bob'), content: { membership: kind } }, h.remote.serverName, h.remote.key);
      expect(await refusal(put(path(kind, 'v1', stateless.eventId), stateless.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const unsigned = { ...ok.pdu, signatures: {} };
      expect(await refusal(put(path(kind, 'v2', ok.eventId), unsigned))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(await refusal(put(path(kind, 'v2', ok.eventId), 'not an event'))).toMatchObject({ status: 400 });
      expect(sent.length).toBe(before);
      await put(path(kind, 'v2', ok.eventId), ok.pdu);
      expect(sent.at(-1)).toMatchObject({ eventId: ok.eventId, membership: kind, origin: h.remote.serverName });
    });
  });

  describe('invite v1 (room versions 1 and 2)', () => {
    const v1Invite = (stateKey: string, overrides: JsonObject = {}) => {
      const fields: JsonObject = {
        room_id: '!old:remote',
        type: 'm.room.member',
        state_key: stateKey,
        sender: h.remote.user('alice'),
        event_id: `$inv${Math.random().toString(36).slice(2)}:${h.remote.serverName}`,
        origin: h.remote.serverName,
        origin_server_ts: Date.now(),
        depth: 5,
        prev_events: [],
        auth_events: [],
        content: { membership: 'invite' },
        ...overrides,
      };
      const pdu = signEvent(fields, '1', h.remote.serverName, h.remote.key) as JsonObject;
      return { eventId: computeEventId(pdu, '1'), pdu };
    };
    const invitePath = (id: string) => `/_matrix/federation/v1/invite/${encodeURIComponent('!old:remote')}/${encodeURIComponent(id)}`;

    it('issue 16 defect 9: PUT /v1/invite is served: the event is the body, room state from unsigned, answer [200, {event}]', async () => {
      const roomState = [{ type: 'm.room.name', state_key: '', sender: h.remote.user('alice'), content: { name: 'Old room' } }];
      const invite = v1Invite('@carol:ingress.test');
      const { body } = await put(invitePath(invite.eventId), { ...invite.pdu, unsigned: { invite_room_state: roomState } });
      expect(body).toEqual([200, { event: expect.objectContaining({ signed_here: true, state_key: '@carol:ingress.test' }) }]);
      expect(invites.at(-1)).toMatchObject({ roomId: '!old:remote', eventId: invite.eventId, roomVersion: '1', origin: h.remote.serverName, inviteRoomState: roomState });
    });

    it('issue 16 defect 9: v1 invite input checks: not an invite 400, invitee elsewhere 400, inviter of another server 403, bad signature 403', async () => {
      const before = invites.length;
      const notInvite = v1Invite('@carol:ingress.test', { content: { membership: 'join' } });
      expect(await refusal(put(invitePath(notInvite.eventId), notInvite.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const elsewhere = v1Invite('@carol:elsewhere.test');
      expect(await refusal(put(invitePath(elsewhere.eventId), elsewhere.pdu))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      const { signatures: _s, hashes: _h, ...unsignedInvite } = v1Invite('@carol:ingress.test').pdu;
      const impostor = signEvent({ ...unsignedInvite, sender: h.other.user('olga') }, '1', h.other.serverName, h.other.key) as JsonObject;
      expect(await refusal(put(invitePath(computeEventId(impostor, '1')), impostor))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      const forged: JsonObject = { ...v1Invite('@carol:ingress.test').pdu, signatures: {} };
      expect(await refusal(put(invitePath(String(forged.event_id)), forged))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(invites.length).toBe(before);
    });
  });

  describe('strict origin checks: an ID without its sigil is no user of the origin', () => {
    const makeJoin = (userId: string) => h.remote.client().getJson<any>(INGRESS_NAME, `/_matrix/federation/v1/make_join/${encodeURIComponent(ROOM)}/${encodeURIComponent(userId)}`, { query: { ver: '10' } });

    it('make_join for `x:<origin>` or the bare origin is 400 M_INVALID_PARAM, never a template; its own user still gets one', async () => {
      for (const userId of [`x:${h.remote.serverName}`, h.remote.serverName]) expect(await refusal(makeJoin(userId))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
      expect(made).toEqual([]);
      await makeJoin(h.remote.user('zed'));
      expect(made.map((m) => m.userId)).toEqual([h.remote.user('zed')]);
    });

    it.each(['join', 'leave'] as const)('send_%s whose sender and state_key are `x:<origin>` is 400, never handed on', async (kind) => {
      const before = sent.length;
      const e = membership(kind, `x:${h.remote.serverName}`, `x:${h.remote.serverName}`);
      expect(await refusal(put(path(kind, 'v2', e.eventId), e.pdu))).toMatchObject({ status: 400 });
      expect(sent.length).toBe(before);
    });

    it('an invite whose state_key is `x:<this server>` (no "@") is 400 M_BAD_JSON and never countersigned', async () => {
      const before = invites.length;
      const invite = signedEvent({ room_id: '!elsewhere:remote', type: 'm.room.member', state_key: `x:${INGRESS_NAME}`, sender: h.remote.user('alice'), content: { membership: 'invite' } }, h.remote.serverName, h.remote.key);
      const path = `/_matrix/federation/v2/invite/${encodeURIComponent('!elsewhere:remote')}/${encodeURIComponent(invite.eventId)}`;
      expect(await refusal(put(path, { room_version: '10', event: invite.pdu, invite_room_state: [] }))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
      expect(invites.length).toBe(before);
    });
  });

  describe('server ACLs', () => {
    it('sytest 50server-acl-endpoints: every room endpoint refuses a server the room ACL denies, 403 M_FORBIDDEN', async () => {
      const room = '!acl-endpoints:ingress.test';
      // The remote server is a member (so reads would be served but for the ACL); both test servers are 127.0.0.1:<port>
      // and ACLs match hosts without ports.
      const { eventIds } = await seedRoom(h, room, [h.remote.user('alice')], [{ type: 'm.room.server_acl', state_key: '', content: { allow: ['*'], deny: ['127.0.0.1'] } }]);
      const r = encodeURIComponent(room);
      const e = encodeURIComponent(eventIds.at(-1)!);
      const u = encodeURIComponent(h.remote.user('bob'));
      const client = h.remote.client();
      const requests: Array<[string, () => Promise<unknown>]> = [
        ['make_join', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/make_join/${r}/${u}`, { query: { ver: '10' } })],
        ['make_leave', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/make_leave/${r}/${u}`)],
        ['make_knock', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/make_knock/${r}/${u}`, { query: { ver: '10' } })],
        ['send_join v1', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v1/send_join/${r}/${e}`, {})],
        ['send_join v2', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v2/send_join/${r}/${e}`, {})],
        ['send_leave v1', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v1/send_leave/${r}/${e}`, {})],
        ['send_leave v2', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v2/send_leave/${r}/${e}`, {})],
        ['send_knock', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v1/send_knock/${r}/${e}`, {})],
        ['invite v1', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v1/invite/${r}/${e}`, {})],
        ['invite v2', () => client.putJson(INGRESS_NAME, `/_matrix/federation/v2/invite/${r}/${e}`, {})],
        ['state', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/state/${r}`, { query: { event_id: eventIds.at(-1)! } })],
        ['state_ids', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/state_ids/${r}`, { query: { event_id: eventIds.at(-1)! } })],
        ['backfill', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/backfill/${r}`, { query: { v: eventIds.at(-1)!, limit: '5' } })],
        ['event_auth', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/event_auth/${r}/${e}`)],
        ['get_missing_events', () => client.postJson(INGRESS_NAME, `/_matrix/federation/v1/get_missing_events/${r}`, { earliest_events: [], latest_events: [eventIds.at(-1)!], limit: 5 })],
        ['event', () => client.getJson(INGRESS_NAME, `/_matrix/federation/v1/event/${e}`)],
      ];
      const answers: Record<string, unknown> = {};
      for (const [name, request] of requests) answers[name] = await refusal(request());
      expect(answers).toEqual(Object.fromEntries(requests.map(([name]) => [name, { status: 403, errcode: 'M_FORBIDDEN' }])));
    });
  });

  describe('queries', () => {
    it('complement TestRemoteAliasRequestsUnderstandUnicode (inbound): query/directory resolves an alias of non-ASCII code points', async () => {
      const alias = '#老虎Łucja🔥⇒:ingress.test';
      await h.store.aliases.create({ alias, roomId: ROOM, servers: [INGRESS_NAME], creator: '@creator:ingress.test', createdTs: Date.now() });
      const { body } = await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/query/directory', { query: { room_alias: alias } });
      expect(body).toEqual({ room_id: ROOM, servers: [INGRESS_NAME] });
    });
  });

  describe('reads', () => {
    it('complement TestEventAuth: /event_auth answers exactly the auth chain of the event asked for, nothing extraneous', async () => {
      const { eventIds } = await seedRoom(h, '!eventauth:ingress.test', [h.remote.user('alice')]);
      const [create, creatorJoin, joinRules] = eventIds;
      const { body } = await h.remote.client().getJson<any>(INGRESS_NAME, `/_matrix/federation/v1/event_auth/${encodeURIComponent('!eventauth:ingress.test')}/${encodeURIComponent(joinRules!)}`);
      expect((body.auth_chain as JsonObject[]).map((e) => computeEventId(e, '10')).sort()).toEqual([create, creatorJoin].sort());
    });
  });

  describe('PUT /send', () => {
    it('issue 16 defect 4: a leave rescinding a pending invite into a room we are not in is handed on, not refused as an unknown room', async () => {
      const room = `!gone:${h.remote.serverName}`;
      const carol = '@carol:ingress.test';
      const invite = signedEvent({ room_id: room, type: 'm.room.member', state_key: carol, sender: h.remote.user('alice'), origin: h.remote.serverName, depth: 4, content: { membership: 'invite' } }, h.remote.serverName, h.remote.key);
      await h.store.events.append({ eventId: invite.eventId, roomId: room, type: 'm.room.member', stateKey: carol, depth: 4, prevEventIds: [], authEventIds: [], pdu: invite.pdu as never, status: 'accepted', outlier: true, receivedTs: Date.now() });
      const leave = signedEvent({ room_id: room, type: 'm.room.member', state_key: carol, sender: h.remote.user('alice'), origin: h.remote.serverName, depth: 5, prev_events: [invite.eventId], content: { membership: 'leave' } }, h.remote.serverName, h.remote.key);
      const stranger = signedEvent({ room_id: room, type: 'm.room.member', state_key: '@dave:ingress.test', sender: h.remote.user('alice'), depth: 5, content: { membership: 'leave' } }, h.remote.serverName, h.remote.key);
      const { body } = await put('/_matrix/federation/v1/send/rescind', { origin: h.remote.serverName, origin_server_ts: Date.now(), pdus: [leave.pdu, stranger.pdu] });
      expect(body.pdus[leave.eventId]).toEqual({});
      const published = () => h.bus.readStream<InboundPdu>(h.topology.streams.inbound.name, h.topology.inboundPdu.all).filter((m) => m.data.roomId === room);
      expect(published().map((m) => m.data)).toEqual([expect.objectContaining({ eventId: leave.eventId, roomVersion: '10', origin: h.remote.serverName })]);
      // From another server the same leave is refused as before: only the inviter's server may rescind.
      const { body: other } = await h.other.client().putJson<any>(INGRESS_NAME, '/_matrix/federation/v1/send/rescind-other', { origin: h.other.serverName, origin_server_ts: Date.now(), pdus: [leave.pdu] });
      expect(other.pdus[leave.eventId]).toBeUndefined();
      expect(published()).toHaveLength(1);
    });

    it('issue 16 defect 2: the same PDU in a new transaction is handed on again (not deduplicated), a retried transaction is not', async () => {
      const m = signedEvent({ room_id: ROOM, type: 'm.room.message', sender: h.remote.user('alice'), depth: 10, prev_events: [head], content: { msgtype: 'm.text', body: 'again' } }, h.remote.serverName, h.remote.key);
      const txn = { origin: h.remote.serverName, origin_server_ts: Date.now(), pdus: [m.pdu] };
      await put('/_matrix/federation/v1/send/first', txn);
      await put('/_matrix/federation/v1/send/second', txn);
      await put('/_matrix/federation/v1/send/second', txn);
      const copies = h.bus.readStream<InboundPdu>(h.topology.streams.inbound.name, h.topology.inboundPdu.all).filter((x) => x.data.eventId === m.eventId);
      expect(copies.map((c) => c.data.txnId)).toEqual(['first', 'second']);
    });
  });
});
