// chat-sync against the real test bridge (matrix-appservice receiving, matrix-js-sdk acting as virtual
// users): one fedgate in-process through service-kit with the real SQLite store, EmbeddedBus and state-resolver.
import type { AddressInfo } from 'node:net';
import type { OutboundEdu } from '@fedgate/bus';
import { TestBridge } from '@fedgate/testing';
import { clientServerCalls, startChatSyncGateway, type ChatSyncGateway } from './chat-sync-gateway';
import { Preset } from 'matrix-js-sdk';

const serverName = 'chat.test';
jest.setTimeout(60_000);

describe('chat-sync with the test bridge', () => {
  let gateway: ChatSyncGateway;
  let base: string;
  let bridge: TestBridge;
  const outboundEdus: OutboundEdu[] = [];
  let token: string;

  beforeAll(async () => {
    gateway = await startChatSyncGateway({
      name: 'chat',
      serverName,
      fastPushRetries: true,
      onPlatform: (platform) => platform.bus.consume({ ...platform.topology.consumers.egressOutboundEdus(), durable: 'test-outbound-edus' }, (m) => {
        outboundEdus.push(m.data);
      }),
    });
    ({ bridge, base, token } = gateway);
  });

  afterAll(() => gateway?.close());

  const { call: callWith } = clientServerCalls(() => base);
  // A string body is JSON here; `rawBody` is sent as it is.
  const call = (method: string, pathAndQuery: string, body?: unknown, auth: string | null = token, rawBody?: string) =>
    callWith(method, pathAndQuery, auth, rawBody ?? (typeof body === 'string' ? JSON.stringify(body) : body));
  const enc = encodeURIComponent;
  let alice: string;
  let bob: string;
  let roomId: string;

  it('registers virtual users, refusing taken IDs and IDs outside the namespace', async () => {
    alice = await bridge.registerVirtualUser('rc_alice');
    bob = await bridge.registerVirtualUser('rc_bob');
    expect([alice, bob]).toEqual([`@rc_alice:${serverName}`, `@rc_bob:${serverName}`]);
    const again = await call('POST', '/_matrix/client/v3/register', { type: 'm.login.application_service', username: 'rc_alice', inhibit_login: true });
    expect(again).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_USER_IN_USE' }) });
    const outside = await call('POST', '/_matrix/client/v3/register', { type: 'm.login.application_service', username: 'mallory', inhibit_login: true });
    expect(outside).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_EXCLUSIVE' }) });
    const whoami = await bridge.asUser(alice).whoami();
    expect(whoami.user_id).toBe(alice);
    const versions = await call('GET', '/_matrix/client/versions', undefined, null);
    expect(versions.body.versions).toContain('v1.1');
  });

  it('creates a room with name, topic and an invite; the bridge gets the events and the invite with stripped state', async () => {
    const created = await bridge.asUser(alice).createRoom({ preset: Preset.PrivateChat, name: 'general', topic: 'all things', invite: [bob], is_direct: false });
    roomId = created.room_id;
    const invite = await bridge.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.room_id === roomId);
    expect(invite.content.membership).toBe('invite');
    expect(invite.unsigned.invite_room_state).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'm.room.name', content: { name: 'general' } }), expect.objectContaining({ type: 'm.room.create' })]),
    );
    const types = bridge.received.events((e) => e.room_id === roomId).map((e) => e.type);
    expect(types).toEqual([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.name',
      'm.room.topic',
      'm.room.member',
    ]);
  });

  it('joins, and messages of every kind arrive in order with their content intact', async () => {
    await bridge.asUser(bob).http.authedRequest('POST' as never, `/rooms/${enc(roomId)}/join`, undefined, {});
    await bridge.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content.membership === 'join');
    const a = bridge.asUser(alice);
    const b = bridge.asUser(bob);
    const { event_id: text } = await a.sendMessage(roomId, { msgtype: 'm.text', body: 'hello **bob**', format: 'org.matrix.custom.html', formatted_body: 'hello <strong>bob</strong>' } as never);
    const { event_id: mention } = await a.sendMessage(roomId, { msgtype: 'm.text', body: 'rc_bob: look', 'm.mentions': { user_ids: [bob] } } as never);
    const { event_id: reply } = await b.sendMessage(roomId, { msgtype: 'm.text', body: '> hello\n\nhi', 'm.relates_to': { 'm.in_reply_to': { event_id: text } } } as never);
    const { event_id: reaction } = await b.sendEvent(roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: text, key: '👍' } } as never);
    const { event_id: edit } = await a.sendMessage(roomId, {
      msgtype: 'm.text',
      body: '* hello bob',
      'm.new_content': { msgtype: 'm.text', body: 'hello bob' },
      'm.relates_to': { rel_type: 'm.replace', event_id: text },
    } as never);
    const { event_id: redaction } = await a.redactEvent(roomId, mention, undefined, { reason: 'oops' });
    await bridge.waitForEvent((e) => e.event_id === redaction);
    const seen = bridge.received.events((e) => e.room_id === roomId && ['m.room.message', 'm.reaction', 'm.room.redaction'].includes(e.type));
    expect(seen.map((e) => e.event_id)).toEqual([text, mention, reply, reaction, edit, redaction]);
    expect(seen[0].content.formatted_body).toBe('hello <strong>bob</strong>');
    expect(seen[1].content['m.mentions']).toEqual({ user_ids: [bob] });
    expect(seen[2].content['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: text } });
    expect(seen[3].content['m.relates_to'].key).toBe('👍');
    expect(seen[4].content['m.relates_to']).toEqual({ rel_type: 'm.replace', event_id: text });
    expect(seen[5]).toMatchObject({ sender: alice, content: { reason: 'oops', redacts: mention } });
  });

  it('pings the application service back on request (POST /_matrix/client/v1/appservice/{id}/ping)', async () => {
    const id = bridge.registration.id;
    const ok = await call('POST', `/_matrix/client/v1/appservice/${enc(id)}/ping`, { transaction_id: 'ping-1' });
    // The push state rides along (issue 15): an AS can answer pings and refuse every transaction.
    expect(ok).toEqual({ status: 200, body: { duration_ms: expect.any(Number), 'org.fedgate.push': { state: 'ok', pending: expect.any(Number) } } });
    expect(bridge.pings).toContain('ping-1');
    const other = await call('POST', `/_matrix/client/v1/appservice/someone-else/ping`, {});
    expect(other).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    const noToken = await call('POST', `/_matrix/client/v1/appservice/${enc(id)}/ping`, {}, null);
    expect(noToken).toMatchObject({ status: 401, body: { errcode: 'M_MISSING_TOKEN' } });
  });

  it('sending twice with one txnId gives one event', async () => {
    const first = await call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/txn-1?user_id=${enc(alice)}`, { msgtype: 'm.text', body: 'once' });
    const second = await call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/txn-1?user_id=${enc(alice)}`, { msgtype: 'm.text', body: 'once' });
    expect(first.status).toBe(200);
    expect(second.body.event_id).toBe(first.body.event_id);
  });

  it('reads and writes state, members and messages', async () => {
    const a = bridge.asUser(alice);
    await a.sendStateEvent(roomId, 'm.room.topic' as never, { topic: 'new topic' } as never, '');
    expect(await a.getStateEvent(roomId, 'm.room.topic', '')).toEqual({ topic: 'new topic' });
    const state = await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state?user_id=${enc(alice)}`);
    expect(state.body.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['m.room.create', 'm.room.topic', 'm.room.power_levels']));
    const missing = await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.avatar/?user_id=${enc(alice)}`);
    expect(missing).toEqual({ status: 404, body: expect.objectContaining({ errcode: 'M_NOT_FOUND' }) });
    const joined = await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members?user_id=${enc(alice)}`);
    expect(Object.keys(joined.body.joined).sort()).toEqual([alice, bob].sort());
    expect((await call('GET', `/_matrix/client/v3/joined_rooms?user_id=${enc(bob)}`)).body).toEqual({ joined_rooms: [roomId] });
    const messages = await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=3&user_id=${enc(alice)}`);
    expect(messages.body.chunk).toHaveLength(3);
    expect(messages.body.chunk[0].type).toBe('m.room.topic');
  });

  it('a profile change updates the member event in joined rooms', async () => {
    await bridge.asUser(alice).setDisplayName('Alice A.');
    const member = await bridge.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === alice && e.content.displayname === 'Alice A.');
    expect(member.content.membership).toBe('join');
    expect((await call('GET', `/_matrix/client/v3/profile/${enc(alice)}`)).body).toEqual({ displayname: 'Alice A.' });
  });

  it('typing and read receipts become ephemeral pushes and outbound EDUs', async () => {
    const a = bridge.asUser(alice);
    await a.sendTyping(roomId, true, 10_000);
    const typing = await bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === roomId && e.content.user_ids.includes(alice));
    expect(typing.content.user_ids).toEqual([alice]);
    const { event_id: target } = await a.sendTextMessage(roomId, 'read me');
    await call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(target)}?user_id=${enc(bob)}`, {});
    const receipt = await bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.room_id === roomId);
    expect(receipt.content[target]['m.read'][bob]).toEqual({ ts: expect.any(Number) });
    while (outboundEdus.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(outboundEdus.map((e) => [e.eduType, e.roomId])).toEqual([
      ['m.typing', roomId],
      ['m.receipt', roomId],
    ]);
    expect(outboundEdus[0].content).toMatchObject({ room_id: roomId, user_id: alice, typing: true });
  });

  it('while the bridge is down events queue, then arrive once and in order', async () => {
    const server = (bridge as unknown as { server: import('node:http').Server }).server;
    const { port } = server.address() as AddressInfo;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const sent: string[] = [];
    for (let n = 0; n < 15; n++) sent.push((await bridge.asUser(bob).sendTextMessage(roomId, `while down ${n}`)).event_id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    await bridge.waitForEvent((e) => e.event_id === sent[sent.length - 1], 20_000);
    const delivered = bridge.received.events((e) => sent.includes(e.event_id)).map((e) => e.event_id);
    expect(delivered).toEqual(sent);
  });

  describe('bad input gets the Matrix error a homeserver gives, and changes nothing', () => {
    const stateIds = async () =>
      ((await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state?user_id=${enc(alice)}`)).body as { event_id: string }[]).map((e) => e.event_id).sort();
    const latest = async () => (await call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=1&user_id=${enc(alice)}`)).body.chunk[0].event_id;
    let before: { state: string[]; latest: string };
    beforeAll(async () => {
      before = { state: await stateIds(), latest: await latest() };
    });
    afterAll(async () => {
      expect({ state: await stateIds(), latest: await latest() }).toEqual(before);
    });

    it.each([
      ['no token', 'GET', '/_matrix/client/v3/account/whoami', undefined, null, 401, 'M_MISSING_TOKEN'],
      ['a wrong token', 'GET', '/_matrix/client/v3/account/whoami', undefined, 'nope', 401, 'M_UNKNOWN_TOKEN'],
      ['a user outside the namespace', 'GET', `/_matrix/client/v3/account/whoami?user_id=${enc('@mallory:chat.test')}`, undefined, undefined, 403, 'M_FORBIDDEN'],
      ['a remote user', 'GET', `/_matrix/client/v3/account/whoami?user_id=${enc('@rc_x:elsewhere.test')}`, undefined, undefined, 403, 'M_FORBIDDEN'],
      ['a bad preset', 'POST', '/_matrix/client/v3/createRoom', { preset: 'everyone' }, undefined, 400, 'M_BAD_JSON'],
      ['an unsupported room version', 'POST', '/_matrix/client/v3/createRoom', { room_version: '999' }, undefined, 400, 'M_UNSUPPORTED_ROOM_VERSION'],
      ['an invalid invitee', 'POST', '/_matrix/client/v3/createRoom', { invite: ['bob'] }, undefined, 400, 'M_INVALID_PARAM'],
      ['a non-object message', 'PUT', '/_matrix/client/v3/rooms/ROOM/send/m.room.message/t-bad', ['x'], undefined, 400, 'M_BAD_JSON'],
      ['a state change by a non-member', 'PUT', `/_matrix/client/v3/rooms/ROOM/state/m.room.topic/?user_id=${enc('@rc_carol:chat.test')}`, { topic: 'x' }, undefined, 403, 'M_FORBIDDEN'],
      ['an invalid room ID', 'PUT', '/_matrix/client/v3/rooms/not-a-room/send/m.room.message/t2', { body: 'x' }, undefined, 400, 'M_INVALID_PARAM'],
      ['typing as someone else', 'PUT', `/_matrix/client/v3/rooms/ROOM/typing/${enc('@rc_bob:chat.test')}`, { typing: true }, undefined, 403, 'M_FORBIDDEN'],
      ['an unknown endpoint', 'GET', '/_matrix/client/v3/nothing/here', undefined, undefined, 404, 'M_UNRECOGNIZED'],
    ])('%s', async (_name, method, pathAndQuery, body, auth, status, errcode) => {
      const url = pathAndQuery.replace('ROOM', enc(roomId));
      const withUser = auth === undefined && !url.includes('user_id=') ? `${url}${url.includes('?') ? '&' : '?'}user_id=${enc(alice)}` : url;
      const answer = await call(method, withUser, body, auth === undefined ? token : auth);
      expect(answer).toEqual({ status, body: expect.objectContaining({ errcode, error: expect.any(String) }) });
    });

    it('a body that is not JSON', async () => {
      const answer = await call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t3?user_id=${enc(alice)}`, undefined, token, '{"body": ');
      expect(answer).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_NOT_JSON' }) });
    });
  });
});
