// Issue 18: two application services on one gateway, each trying the other's users, rooms, aliases and
// deletions through every client-server and admin endpoint. One fedgate in-process (SQLite store,
// EmbeddedBus, state-resolver) with two tenants:
//   - the bridge (TestBridge): exclusive `@rc_.*` users and `#rc_.*` aliases;
//   - the bot: a NON-exclusive `@.*` / `#.*` namespace, which covers the bridge's users too — an
//     exclusive claim wins, so the bot may not act as them.
// docs/security.md (section "tenant") has the table of endpoints, who may, and the test here.
import { type Platform } from '@fedgate/platform';
import { TestBridge } from '@fedgate/testing';
import { BOT_TOKEN, botRegistration, clientServerCalls, startChatSyncGateway, type ChatSyncGateway } from './chat-sync-gateway';

const serverName = 'tenant.test';
jest.setTimeout(60_000);

describe('tenant isolation between two application services (issue 18)', () => {
  let gateway: ChatSyncGateway;
  let base: string;
  let bridge: TestBridge;
  let platform: Platform;
  let rcToken: string;
  const botToken = BOT_TOKEN;

  beforeAll(async () => {
    gateway = await startChatSyncGateway({
      name: 'tenants',
      serverName,
      otherAppServices: [botRegistration(serverName)],
    });
    ({ bridge, base, platform, token: rcToken } = gateway);
  });

  afterAll(() => gateway?.close());

  const enc = encodeURIComponent;
  const { call, ok, as, withUser, register, createRoom, send } = clientServerCalls(() => base);
  const admin = (p: string) => `/_synapse/admin/${p}`;

  let rcAlice: string;
  let botHelper: string;
  let rcRoom: string;
  let rcMessage: string;

  beforeAll(async () => {
    rcAlice = await register('rc_alice', rcToken);
    botHelper = await register('helper', botToken);
    rcRoom = await createRoom(rcAlice, rcToken, { preset: 'public_chat', name: 'rc room' });
    rcMessage = await send(rcRoom, rcAlice, rcToken, 'hi');
  });

  describe("defect 6: the bot's non-exclusive @.* does not reach the bridge's exclusive users", () => {
    // Every endpoint that acts as `user_id=`: the guard refuses before the handler runs.
    const endpoints: [string, string, () => string, unknown][] = [
      ['send a message', 'PUT', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/send/m.room.message/x1`, { msgtype: 'm.text', body: 'forged' }],
      ['redact', 'PUT', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/redact/${enc(rcMessage)}/x2`, {}],
      ['set state', 'PUT', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/state/m.room.topic/`, { topic: 'forged' }],
      ['leave', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/leave`, {}],
      ['join', 'POST', () => `/_matrix/client/v3/join/${enc(rcRoom)}`, {}],
      ['invite', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/invite`, { user_id: '@helper:tenant.test' }],
      ['kick', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/kick`, { user_id: '@helper:tenant.test' }],
      ['create a room', 'POST', () => '/_matrix/client/v3/createRoom', {}],
      ['read messages', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/messages?dir=b`, undefined],
      ['read an event', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/event/${enc(rcMessage)}`, undefined],
      ['read state', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/state`, undefined],
      ['read members', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/members`, undefined],
      ['read joined members', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/joined_members`, undefined],
      ['list joined rooms', 'GET', () => '/_matrix/client/v3/joined_rooms', undefined],
      ['whoami', 'GET', () => '/_matrix/client/v3/account/whoami', undefined],
      ['set the display name', 'PUT', () => `/_matrix/client/v3/profile/${enc('@rc_alice:tenant.test')}/displayname`, { displayname: 'forged' }],
      ['typing', 'PUT', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/typing/${enc('@rc_alice:tenant.test')}`, { typing: true }],
      ['read receipt', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/receipt/m.read/${enc(rcMessage)}`, {}],
      ['presence', 'PUT', () => `/_matrix/client/v3/presence/${enc('@rc_alice:tenant.test')}/status`, { presence: 'online' }],
      ['create an alias', 'PUT', () => `/_matrix/client/v3/directory/room/${enc('#bot_x:tenant.test')}`, { room_id: rcRoom }],
      ['upload media', 'POST', () => '/_matrix/media/v3/upload', undefined],
      ['deactivate the account', 'POST', () => '/_matrix/client/v3/account/deactivate', {}],
      ['read one state event', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/state/m.room.name/`, undefined],
      ['forget', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/forget`, {}],
      ['knock', 'POST', () => `/_matrix/client/v3/knock/${enc(rcRoom)}`, {}],
      ['ban', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/ban`, { user_id: '@helper:tenant.test' }],
      ['unban', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/unban`, { user_id: '@helper:tenant.test' }],
      ['reserve a media ID', 'POST', () => '/_matrix/media/v1/create', undefined],
      ['publish the room in the directory', 'PUT', () => `/_matrix/client/v3/directory/list/room/${enc(rcRoom)}`, { visibility: 'public' }],
      ['delete an alias', 'DELETE', () => `/_matrix/client/v3/directory/room/${enc('#rc_any:tenant.test')}`, undefined],
      // Issue 14's client-server modules go through the same guard.
      ['read account data', 'GET', () => `/_matrix/client/v3/user/${enc('@rc_alice:tenant.test')}/account_data/m.direct`, undefined],
      ['set account data', 'PUT', () => `/_matrix/client/v3/user/${enc('@rc_alice:tenant.test')}/account_data/m.direct`, {}],
      ['set room account data', 'PUT', () => `/_matrix/client/v3/user/${enc('@rc_alice:tenant.test')}/rooms/${enc(rcRoom)}/account_data/x.y`, {}],
      ['read room tags', 'GET', () => `/_matrix/client/v3/user/${enc('@rc_alice:tenant.test')}/rooms/${enc(rcRoom)}/tags`, undefined],
      ['set read markers', 'POST', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/read_markers`, { 'm.fully_read': rcMessage }],
      ['read the context of an event', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/context/${enc(rcMessage)}`, undefined],
      ['list the room aliases', 'GET', () => `/_matrix/client/v3/rooms/${enc(rcRoom)}/aliases`, undefined],
      ['jump to a date', 'GET', () => `/_matrix/client/v1/rooms/${enc(rcRoom)}/timestamp_to_event?ts=0&dir=f`, undefined],
      ['request an OpenID token', 'POST', () => `/_matrix/client/v3/user/${enc('@rc_alice:tenant.test')}/openid/request_token`, {}],
    ];
    it.each(endpoints)('%s as the bridge user with the bot token: 403 M_EXCLUSIVE', async (_name, method, pathOf, body) => {
      const p = pathOf();
      const answer = await call(method, withUser(p, rcAlice), botToken, body);
      expect(answer).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_EXCLUSIVE' }) });
    });

    it('admin deactivation of the bridge user with the bot token: 403 M_EXCLUSIVE', async () => {
      expect(await call('POST', admin(`v1/deactivate/${enc(rcAlice)}`), botToken, {})).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_EXCLUSIVE' }) });
    });

    it("the bot cannot remove the bridge's alias as its own user either", async () => {
      const room = await createRoom(rcAlice, rcToken, { preset: 'public_chat', room_alias_name: 'rc_kept' });
      expect(await call('DELETE', `/_matrix/client/v3/directory/room/${enc('#rc_kept:tenant.test')}?${as(botHelper)}`, botToken)).toMatchObject({ status: 403 });
      expect(await platform.store.aliases.get('#rc_kept:tenant.test')).toMatchObject({ roomId: room });
    });

    it('the bridge may not act as a user the bot registered', async () => {
      const answer = await call('GET', `/_matrix/client/v3/account/whoami?${as(botHelper)}`, rcToken);
      expect(answer.status).toBe(403);
    });

    it('nothing changed: the bridge user is still joined, with its own name', async () => {
      expect((await ok('GET', `/_matrix/client/v3/joined_rooms?${as(rcAlice)}`, rcToken)).joined_rooms).toContain(rcRoom);
      expect(await platform.store.chatLifecycle.getDeactivated(rcAlice)).toBeFalsy();
    });
  });

  describe('defect 5: alias squatting', () => {
    it('an alias on a room the caller is not in is refused, answered the same as an unknown room', async () => {
      const squat = await call('PUT', `/_matrix/client/v3/directory/room/${enc('#squat:tenant.test')}?${as(botHelper)}`, botToken, { room_id: rcRoom });
      const unknown = await call('PUT', `/_matrix/client/v3/directory/room/${enc('#squat2:tenant.test')}?${as(botHelper)}`, botToken, { room_id: '!nope:tenant.test' });
      expect(squat).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
      expect(unknown.status).toBe(squat.status);
      expect(unknown.body.errcode).toBe(squat.body.errcode);
      expect(await platform.store.aliases.get('#squat:tenant.test')).toBeUndefined();
    });

    it("an alias another tenant's member left behind does not hold the room hostage: deletion removes it", async () => {
      const room = await createRoom(rcAlice, rcToken, { preset: 'public_chat' });
      await ok('POST', `/_matrix/client/v3/join/${enc(room)}?${as(botHelper)}`, botToken, {});
      await ok('PUT', `/_matrix/client/v3/directory/room/${enc('#bots_name:tenant.test')}?${as(botHelper)}`, botToken, { room_id: room });
      await ok('POST', `/_matrix/client/v3/rooms/${enc(room)}/leave?${as(botHelper)}`, botToken, {});
      const result = await ok('DELETE', admin(`v1/rooms/${enc(room)}`), rcToken, {});
      expect(result.local_aliases).toEqual(['#bots_name:tenant.test']);
      expect(await platform.store.aliases.get('#bots_name:tenant.test')).toBeUndefined();
    });
  });

  describe('defect 4: room deletion records belong to their service', () => {
    it('another service cannot re-delete (and so undo) a deletion, nor read its status', async () => {
      const room = await createRoom(rcAlice, rcToken, { preset: 'private_chat' });
      const { delete_id: deleteId } = await ok('DELETE', admin(`v2/rooms/${enc(room)}`), rcToken, { block: true, purge: true });
      // Every local member is gone, so "all local members are mine" holds for anyone now.
      expect(await call('DELETE', admin(`v1/rooms/${enc(room)}`), botToken, { block: false, purge: false })).toEqual({
        status: 403,
        body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }),
      });
      expect(await call('GET', admin(`v2/rooms/delete_status/${deleteId}`), botToken)).toMatchObject({ status: 404 });
      expect(await ok('GET', admin(`v2/rooms/delete_status/${deleteId}`), rcToken)).toMatchObject({ status: 'complete' });
      expect(await platform.store.chatLifecycle.getRoomDeletion(room)).toMatchObject({ deleteId, appServiceId: bridge.registration.id, blocked: true, purged: true });
    });

    it('blocking a room this server has never seen is not an application service’s act', async () => {
      for (const token of [rcToken, botToken]) {
        expect(await call('DELETE', admin(`v1/rooms/${enc('!never-seen:elsewhere.test')}`), token, { block: true })).toEqual({
          status: 403,
          body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }),
        });
      }
      expect(await platform.store.chatLifecycle.getRoomDeletion('!never-seen:elsewhere.test')).toBeUndefined();
    });
  });

  describe('defect 7: directory visibility is stored, honoured and guarded', () => {
    const listing = (roomId: string) => `/_matrix/client/v3/directory/list/room/${enc(roomId)}`;

    it('createRoom keeps the visibility asked for (private by default)', async () => {
      const published = await createRoom(rcAlice, rcToken, { preset: 'public_chat', visibility: 'public' });
      const unpublished = await createRoom(rcAlice, rcToken, { preset: 'public_chat' });
      expect(await ok('GET', listing(published), rcToken)).toEqual({ visibility: 'public' });
      expect(await ok('GET', listing(unpublished), rcToken)).toEqual({ visibility: 'private' });
      expect((await platform.store.roomDirectory.listPublic({ limit: 1000 })).includes(unpublished)).toBe(false);
      expect(await call('GET', listing('!unknown:tenant.test'), rcToken)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    });

    it('only a member with the power to set the canonical alias may publish; another tenant may not', async () => {
      const room = await createRoom(rcAlice, rcToken, { preset: 'public_chat' });
      expect(await call('PUT', `${listing(room)}?${as(botHelper)}`, botToken, { visibility: 'public' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      await ok('POST', `/_matrix/client/v3/join/${enc(room)}?${as(botHelper)}`, botToken, {});
      expect(await call('PUT', `${listing(room)}?${as(botHelper)}`, botToken, { visibility: 'public' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      expect(await ok('GET', listing(room), rcToken)).toEqual({ visibility: 'private' });
      await ok('PUT', `${listing(room)}?${as(rcAlice)}`, rcToken, { visibility: 'public' });
      expect(await ok('GET', listing(room), botToken)).toEqual({ visibility: 'public' });
      expect(await call('PUT', `${listing(room)}?${as(rcAlice)}`, rcToken, { visibility: 'everyone' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    });
  });

  describe('defect 12: legacy media downloads', () => {
    it('need a token unless the operator turned unauthenticated downloads on', async () => {
      expect(await call('GET', `/_matrix/media/v3/download/${serverName}/anything`, null)).toEqual({ status: 401, body: expect.objectContaining({ errcode: 'M_MISSING_TOKEN' }) });
      expect(await call('GET', `/_matrix/media/v3/thumbnail/${serverName}/anything?width=32&height=32`, null)).toEqual({ status: 401, body: expect.objectContaining({ errcode: 'M_MISSING_TOKEN' }) });
      expect((await call('GET', `/_matrix/media/v3/download/${serverName}/anything`, rcToken)).status).toBe(404);
    });
  });
});
