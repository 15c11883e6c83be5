// Issue 14, "what bridges use from the client-server API": account data (global, per room, tags), read
// markers, /context, /rooms/{roomId}/aliases, timestamp_to_event and erasure, on one in-process gateway
// (SQLite store, EmbeddedBus, state-resolver) with two tenants, so every read is also tried by the tenant
// that may not have it (issue 18):
//   - the bridge (TestBridge): exclusive `@rc_.*` users, driven through matrix-js-sdk's own calls;
//   - the bot: a non-exclusive `@.*` namespace, which covers the bridge's users too — an exclusive claim wins.
import type { OutboundEdu } from '@fedgate/bus';
import { MatrixEvent, ReceiptType } from 'matrix-js-sdk';
import { type Platform } from '@fedgate/platform';
import { TestBridge } from '@fedgate/testing';
import { BOT_TOKEN, botRegistration, clientServerCalls, startChatSyncGateway, type ChatSyncGateway } from './chat-sync-gateway';

const serverName = 'modules.test';
jest.setTimeout(60_000);

describe('client-server modules bridges use (issue 14)', () => {
  let gateway: ChatSyncGateway;
  let base: string;
  let bridge: TestBridge;
  let platform: Platform;
  let rcToken: string;
  const botToken = BOT_TOKEN;
  const outboundEdus: OutboundEdu[] = [];

  beforeAll(async () => {
    gateway = await startChatSyncGateway({
      name: 'cs-modules',
      serverName,
      otherAppServices: [botRegistration(serverName)],
      // Every EDU that would leave for other servers, to show that private receipts never do.
      onPlatform: (p) => p.bus.consume({ ...p.topology.consumers.egressOutboundEdus(), durable: 'test-outbound-edus' }, (m) => void outboundEdus.push(m.data)),
    });
    ({ bridge, base, platform, token: rcToken } = gateway);
  });

  afterAll(() => gateway?.close());

  const enc = encodeURIComponent;
  const { call, ok, as, withUser, register, createRoom, send } = clientServerCalls(() => base);

  let rcAlice: string;
  let rcBob: string;
  let botHelper: string;
  let rcRoom: string;
  let rcMessage: string;

  beforeAll(async () => {
    rcAlice = await register('rc_alice', rcToken);
    rcBob = await register('rc_bob', rcToken);
    botHelper = await register('helper', botToken);
    rcRoom = await createRoom(rcAlice, rcToken, { preset: 'public_chat', name: 'rc room', room_alias_name: 'rc_modules' });
    rcMessage = await send(rcRoom, rcAlice, rcToken, 'hello');
  });

  describe('account data', () => {
    it("matrix-js-sdk's own calls set and read global and room account data, and room tags", async () => {
      const client = bridge.asUser(rcAlice);
      const direct = { '@someone:remote.test': [rcRoom] };
      await client.setAccountDataRaw('m.direct' as never, direct as never);
      expect(await client.getAccountDataFromServer('m.direct' as never)).toEqual(direct);
      expect(await client.getAccountDataFromServer('org.example.unset' as never)).toBeNull();
      await client.setRoomAccountData(rcRoom, 'org.example.room' as never, { bridged: true } as never);
      expect(await ok('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/org.example.room`, rcAlice), rcToken)).toEqual({ bridged: true });
      // Global and room entries of one type are apart.
      expect(await call('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/m.direct`, rcAlice), rcToken)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
      await client.setRoomTag(rcRoom, 'm.favourite', { order: 0.25 });
      await client.setRoomTag(rcRoom, 'u.work', {});
      await client.deleteRoomTag(rcRoom, 'u.work');
      expect(await client.getRoomTags(rcRoom)).toEqual({ tags: { 'm.favourite': { order: 0.25 } } });
      expect(await ok('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/m.tag`, rcAlice), rcToken)).toEqual({ tags: { 'm.favourite': { order: 0.25 } } });
    });

    it('one user may not read or write another user’s account data: not another tenant, not a user of the same tenant', async () => {
      await ok('PUT', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/account_data/org.example.secret`, rcAlice), rcToken, { secret: 1 });
      const paths = [`/_matrix/client/v3/user/${enc(rcAlice)}/account_data/org.example.secret`, `/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/org.example.room`, `/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/tags`];
      for (const p of paths) {
        // The bot as its own user, naming the bridge user in the path: forbidden.
        expect(await call('GET', withUser(p, botHelper), botToken)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        // The bot asserting the bridge user: refused before the handler (the bridge's namespace is exclusive).
        expect(await call('GET', withUser(p, rcAlice), botToken)).toMatchObject({ status: 403, body: { errcode: 'M_EXCLUSIVE' } });
        // The bot's sender (no user_id=) is not the bridge user either.
        expect(await call('GET', p, botToken)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        // Another user of the same bridge.
        expect(await call('GET', withUser(p, rcBob), rcToken)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      }
      expect(await call('PUT', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/account_data/org.example.secret`, botHelper), botToken, { secret: 'overwritten' })).toMatchObject({ status: 403 });
      expect(await call('PUT', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/tags/u.x`, rcBob), rcToken, {})).toMatchObject({ status: 403 });
      expect(await ok('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/account_data/org.example.secret`, rcAlice), rcToken)).toEqual({ secret: 1 });
    });

    it('bad input: server-controlled types (405), not an object, a bad room ID, an entry over the size bound', async () => {
      const global = (type: string) => withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/account_data/${type}`, rcAlice);
      const room = (roomId: string, type: string) => withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(roomId)}/account_data/${type}`, rcAlice);
      expect(await call('PUT', room(rcRoom, 'm.fully_read'), rcToken, { event_id: rcMessage })).toMatchObject({ status: 405, body: { errcode: 'M_BAD_JSON' } });
      expect(await call('PUT', global('m.push_rules'), rcToken, {})).toMatchObject({ status: 405, body: { errcode: 'M_BAD_JSON' } });
      expect(await call('PUT', global('org.example.list'), rcToken, [1, 2])).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
      expect(await call('PUT', global('org.example.list'), rcToken, 'not json')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
      expect(await call('PUT', room('not-a-room', 'org.example.x'), rcToken, {})).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      expect(await call('PUT', global('org.example.big'), rcToken, { blob: 'x'.repeat(70 * 1024) })).toMatchObject({ status: 413, body: { errcode: 'M_TOO_LARGE' } });
      expect(await call('GET', global('org.example.big'), rcToken)).toMatchObject({ status: 404 });
    });
  });

  describe('read markers', () => {
    it('sets the fully-read marker (room account data) and the read receipt in one call; only events of the room', async () => {
      const later = await send(rcRoom, rcAlice, rcToken, 'marker');
      await ok('POST', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/read_markers`, rcAlice), rcToken, { 'm.fully_read': later, 'm.read': later, 'm.read.private': later });
      expect(await ok('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/m.fully_read`, rcAlice), rcToken)).toEqual({ event_id: later });
      // The receipt type m.fully_read moves the same marker.
      await ok('POST', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/receipt/m.fully_read/${enc(rcMessage)}`, rcAlice), rcToken, {});
      expect(await ok('GET', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/rooms/${enc(rcRoom)}/account_data/m.fully_read`, rcAlice), rcToken)).toEqual({ event_id: rcMessage });
      const other = await createRoom(rcAlice, rcToken, { preset: 'private_chat' });
      const elsewhere = await send(other, rcAlice, rcToken, 'elsewhere');
      expect(await call('POST', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/read_markers`, rcAlice), rcToken, { 'm.fully_read': elsewhere })).toMatchObject({ status: 404 });
      expect(await call('POST', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/read_markers`, rcAlice), rcToken, { 'm.fully_read': 5 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
      // A user not in the room sets nothing there.
      expect(await call('POST', withUser(`/_matrix/client/v3/rooms/${enc(other)}/read_markers`, botHelper), botToken, { 'm.fully_read': elsewhere })).toMatchObject({ status: 403 });
      expect(await platform.store.accountData.get(botHelper, other, 'm.fully_read')).toBeUndefined();
    });
  });

  describe('private read receipts (issue 14)', () => {
    it('m.read.private is kept for its user, pushed to the bridge that set it as an ephemeral receipt, and never leaves as an EDU', async () => {
      const seen = await send(rcRoom, rcAlice, rcToken, 'read privately');
      const later = await send(rcRoom, rcAlice, rcToken, 'read publicly');
      // matrix-js-sdk's own call for a private receipt.
      const seenEvent = new MatrixEvent({ event_id: seen, room_id: rcRoom, type: 'm.room.message', sender: rcAlice, content: {} });
      await bridge.asUser(rcAlice).sendReadReceipt(seenEvent, ReceiptType.ReadPrivate, true);
      const pushed = await bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.content?.[seen]?.['m.read.private']?.[rcAlice] !== undefined);
      expect(pushed.room_id).toBe(rcRoom);
      await ok('POST', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/read_markers`, rcAlice), rcToken, { 'm.read': later, 'm.read.private': later });
      expect(await platform.store.privateReceipts.forRoom(rcAlice, rcRoom)).toMatchObject([{ eventId: later, threadId: null }]);
      // The public one goes out; wait for it, then no EDU of any kind named the private one.
      const deadline = Date.now() + 10_000;
      while (!outboundEdus.some((edu) => JSON.stringify(edu.content).includes(later)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(outboundEdus.filter((edu) => JSON.stringify(edu.content).includes(later)).map((edu) => Object.keys((edu.content as Record<string, any>)[rcRoom]))).toEqual([['m.read']]);
      expect(outboundEdus.filter((edu) => JSON.stringify(edu.content).includes('m.read.private') || JSON.stringify(edu.content).includes(seen))).toEqual([]);
      // The bot shares the room; its users have no private receipt of alice's, and it was never pushed one.
      expect(await platform.store.privateReceipts.forRoom(botHelper, rcRoom)).toEqual([]);
    });
  });

  describe('client-server publicRooms (issue 14)', () => {
    it("matrix-js-sdk's publicRooms lists this server's published rooms; a forged since is a 400; a server that cannot be reached is a 502", async () => {
      const published = await createRoom(rcAlice, rcToken, { preset: 'public_chat', visibility: 'public', name: 'rc published lounge' });
      const client = bridge.asUser(rcAlice);
      expect((await client.publicRooms({ limit: 50 })).chunk.map((r) => r.room_id)).toContain(published);
      expect((await client.publicRooms({ server: serverName, filter: { generic_search_term: 'LOUNGE' } })).chunk.map((r) => r.room_id)).toEqual([published]);
      expect((await client.publicRooms({ filter: { generic_search_term: 'lounge' }, include_all_networks: true })).chunk.map((r) => r.room_id)).toEqual([published]);
      expect(await call('GET', withUser('/_matrix/client/v3/publicRooms?since=forged', rcAlice), rcToken)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      expect(await call('GET', withUser(`/_matrix/client/v3/publicRooms?server=${enc('localhost:1')}`, rcAlice), rcToken)).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
      expect(await call('POST', withUser('/_matrix/client/v3/publicRooms', rcAlice), rcToken, { filter: { room_types: 'm.space' } })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
      expect(await call('GET', '/_matrix/client/v3/publicRooms', null)).toMatchObject({ status: 401 });
    });
  });

  describe('/context, /aliases and timestamp_to_event respect who may see what', () => {
    let room: string;
    let beforeJoin: string[];
    let afterJoin: string[];
    let joinedTs: number;

    beforeAll(async () => {
      room = await createRoom(rcAlice, rcToken, { preset: 'public_chat', room_alias_name: 'rc_history', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
      beforeJoin = [await send(room, rcAlice, rcToken, 'one'), await send(room, rcAlice, rcToken, 'two')];
      await new Promise((resolve) => setTimeout(resolve, 5));
      joinedTs = Date.now();
      await ok('POST', `/_matrix/client/v3/join/${enc(room)}?${as(botHelper)}`, botToken, {});
      afterJoin = [await send(room, rcAlice, rcToken, 'three'), await send(room, rcAlice, rcToken, 'four')];
    });

    const context = (userId: string, token: string, eventId: string, limit = 10) => call('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/context/${enc(eventId)}?limit=${limit}`, userId), token);
    const bodiesOf = (events: Array<{ type: string; content: { body?: string } }>) => events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);

    it('/context serves a member the event with what surrounds it', async () => {
      const { status, body } = await context(rcAlice, rcToken, afterJoin[0]);
      expect(status).toBe(200);
      expect(body.event).toMatchObject({ event_id: afterJoin[0], content: { body: 'three' } });
      expect(bodiesOf(body.events_before)).toEqual(['two', 'one']);
      expect(bodiesOf(body.events_after)).toEqual(['four']);
      expect(body.state.some((e: { type: string }) => e.type === 'm.room.create')).toBe(true);
      expect(body.start).toMatch(/^d\d+$/);
      expect(body.end).toMatch(/^d\d+$/);
      // The tokens page on with /messages.
      const page = await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/messages?dir=f&from=${body.end}`, rcAlice), rcToken);
      expect(Array.isArray(page.chunk)).toBe(true);
    });

    it('/context applies its filter (issue 14): types and lazy-loaded members over HTTP; a bad filter is a 400', async () => {
      const filtered = (filter: string) => call('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/context/${enc(afterJoin[0])}?limit=10&filter=${enc(filter)}`, rcAlice), rcToken);
      const { status, body } = await filtered(JSON.stringify({ types: ['m.room.message'], lazy_load_members: true }));
      expect(status).toBe(200);
      expect(body.events_before.map((e: { content: { body: string } }) => e.content.body)).toEqual(['two', 'one']);
      expect(body.events_after.map((e: { content: { body: string } }) => e.content.body)).toEqual(['four']);
      // Only messages pass the filter: no state event is left in `state` either.
      expect(body.state).toEqual([]);
      const members = await filtered(JSON.stringify({ lazy_load_members: true }));
      expect(members.body.state.filter((e: { type: string }) => e.type === 'm.room.member').map((e: { state_key: string }) => e.state_key)).toEqual(expect.arrayContaining([rcAlice]));
      expect(await filtered('{"types":')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      expect(await filtered(JSON.stringify({ not_senders: 'x' }))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    });

    it('/context answers 404 for an event from before the user joined (history visibility joined) and leaves such events out around one they may see', async () => {
      expect(await context(botHelper, botToken, beforeJoin[1])).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
      const { body } = await context(botHelper, botToken, afterJoin[0]);
      expect(bodiesOf(body.events_before)).toEqual([]);
      expect(bodiesOf(body.events_after)).toEqual(['four']);
    });

    it('/context of an event of another room, and by a user not in the room, is refused', async () => {
      expect(await call('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/context/${enc(rcMessage)}`, rcAlice), rcToken)).toMatchObject({ status: 404 });
      expect(await call('GET', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/context/${enc(rcMessage)}`, botHelper), botToken)).toMatchObject({ status: 403 });
      expect(await call('GET', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/context/${enc(rcMessage)}`, rcAlice), botToken)).toMatchObject({ status: 403, body: { errcode: 'M_EXCLUSIVE' } });
    });

    it('/rooms/{roomId}/aliases lists the local aliases to a member only', async () => {
      expect(await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/aliases`, botHelper), botToken)).toEqual({ aliases: ['#rc_history:modules.test'] });
      expect(await call('GET', withUser(`/_matrix/client/v3/rooms/${enc(rcRoom)}/aliases`, botHelper), botToken)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      expect(await call('GET', withUser(`/_matrix/client/v3/rooms/${enc('!unknown:modules.test')}/aliases`, botHelper), botToken)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    });

    it('timestamp_to_event finds the closest event in each direction, skipping what the user may not see', async () => {
      const jump = (userId: string, token: string, ts: number, dir: string) => call('GET', withUser(`/_matrix/client/v1/rooms/${enc(room)}/timestamp_to_event?ts=${ts}&dir=${dir}`, userId), token);
      const forward = await jump(rcAlice, rcToken, joinedTs, 'f');
      expect(forward.status).toBe(200);
      expect(typeof forward.body.origin_server_ts).toBe('number');
      expect(forward.body.origin_server_ts).toBeGreaterThanOrEqual(joinedTs);
      expect((await jump(rcAlice, rcToken, joinedTs - 1, 'b')).body.event_id).toBe(beforeJoin[1]);
      expect((await jump(rcAlice, rcToken, Date.now() + 60_000, 'b')).body.event_id).toBe(afterJoin[1]);
      expect(await jump(rcAlice, rcToken, Date.now() + 60_000, 'f')).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
      // Before the bot's join, under `joined`, the messages are hidden from it: backwards from then it gets an
      // earlier event it may see (the room's first events, sent before the visibility was set), never those.
      const hidden = await jump(botHelper, botToken, joinedTs - 1, 'b');
      expect(hidden.status).toBe(200);
      expect(beforeJoin).not.toContain(hidden.body.event_id);
      expect((await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/event/${enc(hidden.body.event_id)}`, botHelper), botToken)).type).not.toBe('m.room.message');
      expect((await jump(botHelper, botToken, Date.now() + 60_000, 'b')).body.event_id).toBe(afterJoin[1]);
      expect(await call('GET', withUser(`/_matrix/client/v1/rooms/${enc(rcRoom)}/timestamp_to_event?ts=0&dir=f`, botHelper), botToken)).toMatchObject({ status: 403 });
      expect(await jump(rcAlice, rcToken, 0, 'x')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      expect(await call('GET', withUser(`/_matrix/client/v1/rooms/${enc(room)}/timestamp_to_event?dir=f`, rcAlice), rcToken)).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
    });
  });

  describe('erasure: after deactivation with erase: true, the user’s events are served redacted to those who join later', () => {
    let room: string;
    let said: string;
    let rcCarol: string;
    let rcDave: string;

    beforeAll(async () => {
      rcCarol = await register('rc_carol', rcToken);
      rcDave = await register('rc_dave', rcToken);
      room = await createRoom(rcCarol, rcToken, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'shared' } }] });
      await ok('POST', `/_matrix/client/v3/join/${enc(room)}?${as(rcDave)}`, rcToken, {});
      said = await send(room, rcCarol, rcToken, 'carol says something personal');
      await ok('PUT', withUser(`/_matrix/client/v3/user/${enc(rcCarol)}/account_data/m.direct`, rcCarol), rcToken, { '@x:remote.test': [room] });
      await ok('POST', withUser(`/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read.private/${enc(said)}`, rcCarol), rcToken, {});
      await ok('POST', withUser('/_matrix/client/v3/account/deactivate', rcCarol), rcToken, { erase: true });
      await ok('POST', `/_matrix/client/v3/join/${enc(room)}?${as(botHelper)}`, botToken, {});
    });

    const messageOf = async (userId: string, token: string) => {
      const { chunk } = await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/messages?dir=b&limit=50`, userId), token);
      return (chunk as Array<{ event_id: string; content: Record<string, unknown> }>).find((e) => e.event_id === said);
    };

    it('a user who joins after the erasure gets the redacted event from /messages, /event and /context', async () => {
      expect((await messageOf(botHelper, botToken))?.content).toEqual({});
      expect((await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/event/${enc(said)}`, botHelper), botToken)).content).toEqual({});
      expect((await ok('GET', withUser(`/_matrix/client/v3/rooms/${enc(room)}/context/${enc(said)}`, botHelper), botToken)).event.content).toEqual({});
    });

    it('a user who was joined when it was said still sees it whole', async () => {
      expect((await messageOf(rcDave, rcToken))?.content).toEqual({ msgtype: 'm.text', body: 'carol says something personal' });
    });

    it('the erased user’s account data and private read receipts are gone', async () => {
      expect(await platform.store.accountData.countForUser(rcCarol)).toBe(0);
      expect(await platform.store.privateReceipts.forRoom(rcCarol, room)).toEqual([]);
    });
  });

  describe('openid request_token', () => {
    it('issues a token for the requesting user only, kept as a hash', async () => {
      const answer = await ok('POST', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/openid/request_token`, rcAlice), rcToken, {});
      expect(answer).toEqual({ access_token: expect.any(String), token_type: 'Bearer', matrix_server_name: serverName, expires_in: 3600 });
      const hash = (await import('node:crypto')).createHash('sha256').update(answer.access_token as string).digest('base64url');
      expect(await platform.store.openIdTokens.findValid(hash, Date.now())).toMatchObject({ userId: rcAlice });
      expect(await platform.store.openIdTokens.findValid(answer.access_token as string, Date.now())).toBeUndefined();
      expect(await call('POST', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/openid/request_token`, botHelper), botToken, {})).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      expect(await call('POST', withUser(`/_matrix/client/v3/user/${enc(rcAlice)}/openid/request_token`, rcAlice), botToken, {})).toMatchObject({ status: 403, body: { errcode: 'M_EXCLUSIVE' } });
    });
  });
});
