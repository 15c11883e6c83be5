// The chat platform's admin paths, carried to federation: deactivating a user and deleting a room on
// the chat side (client-server `account/deactivate`, the Synapse admin calls a bridge uses), forgetting
// a room and reading its state after leaving. One fedgate in-process (real SQLite store, EmbeddedBus,
// state-resolver) with the test bridge as the chat platform, and a second application service whose
// users the first may not touch.
import { type Platform } from '@fedgate/platform';
import { TestBridge } from '@fedgate/testing';
import { clientServerCalls, startChatSyncGateway, type ChatSyncGateway } from './chat-sync-gateway';

const serverName = 'life.test';
/** `limits.maxUploadBytes`: the one setting behind both the limit the AS is told and the one enforced. */
const UPLOAD_LIMIT = 64 * 1024;
jest.setTimeout(60_000);

describe('chat-side deactivation and room deletion', () => {
  let gateway: ChatSyncGateway;
  let bridge: TestBridge;
  let platform: Platform;
  let base: string;
  let token: string;
  const otherToken = 'as-other-service';

  beforeAll(async () => {
    gateway = await startChatSyncGateway({
      name: 'lifecycle',
      serverName,
      otherAppServices: [{ id: 'other', asToken: otherToken, hsToken: 'hs-other-service', senderLocalpart: 'xx_bot', users: [{ exclusive: true, regex: '@xx_.*:life\\.test' }] }],
      config: { limits: { maxUploadBytes: UPLOAD_LIMIT } },
      fastPushRetries: true,
    });
    ({ bridge, platform, base, token } = gateway);
  });

  afterAll(() => gateway?.close());

  const enc = encodeURIComponent;
  const { call: callWith } = clientServerCalls(() => base);
  // A string body is JSON here (the shared call sends strings as they are).
  const call = (method: string, pathAndQuery: string, body?: unknown, auth: string | null = token) => callWith(method, pathAndQuery, auth, typeof body === 'string' ? JSON.stringify(body) : body);
  const as = (userId: string) => `user_id=${enc(userId)}`;
  const ok = async (method: string, pathAndQuery: string, body?: unknown, auth?: string) => {
    const answer = await call(method, pathAndQuery, body, auth);
    if (answer.status !== 200) throw new Error(`${method} ${pathAndQuery}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const register = async (localpart: string, auth = token) => (await ok('POST', '/_matrix/client/v3/register', { type: 'm.login.application_service', username: localpart, inhibit_login: true }, auth)).user_id as string;
  const createRoom = async (userId: string, body: Record<string, unknown>) => (await ok('POST', `/_matrix/client/v3/createRoom?${as(userId)}`, body)).room_id as string;
  const join = (userId: string, roomId: string, auth?: string) => ok('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join?${as(userId)}`, {}, auth);
  const invite = (userId: string, roomId: string, target: string) => ok('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite?${as(userId)}`, { user_id: target });
  const joinedMembers = async (userId: string, roomId: string) => Object.keys((await ok('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members?${as(userId)}`)).joined).sort();
  const membershipEvent = (roomId: string, userId: string, membership: string) =>
    bridge.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.member' && e.state_key === userId && e.content.membership === membership);
  const adminPath = (p: string) => `/_synapse/admin/${p}`;

  let alice: string;
  let bob: string;
  let carol: string;
  let dave: string;
  let erin: string;

  beforeAll(async () => {
    [alice, bob, carol, dave, erin] = await Promise.all(['rc_alice', 'rc_bob', 'rc_carol', 'rc_dave', 'rc_erin'].map((localpart) => register(localpart)));
  });

  describe('deactivating a user', () => {
    let general: string;
    let random: string;
    let invitedTo: string;

    beforeAll(async () => {
      general = await createRoom(alice, { preset: 'public_chat', name: 'general' });
      random = await createRoom(alice, { preset: 'public_chat', name: 'random' });
      invitedTo = await createRoom(alice, { preset: 'private_chat', name: 'private' });
      for (const roomId of [general, random]) await join(bob, roomId);
      await invite(alice, invitedTo, bob);
      await ok('PUT', `/_matrix/client/v3/profile/${enc(bob)}/displayname?${as(bob)}`, { displayname: 'Bob B.' });
      await ok('PUT', `/_matrix/client/v3/profile/${enc(bob)}/avatar_url?${as(bob)}`, { avatar_url: 'mxc://life.test/bob' });
      await ok('PUT', `/_matrix/client/v3/directory/room/${enc('#rc_bobs:life.test')}?${as(bob)}`, { room_id: general });
      await bridge.waitForEvent((e) => e.room_id === random && e.state_key === bob && e.content.avatar_url === 'mxc://life.test/bob');
    });

    it('through account/deactivate with erase: leaves both rooms, rejects the invite, erases the profile', async () => {
      const answer = await call('POST', `/_matrix/client/v3/account/deactivate?${as(bob)}`, { erase: true });
      expect(answer).toEqual({ status: 200, body: { id_server_unbind_result: 'success' } });
      for (const roomId of [general, random, invitedTo]) {
        const leave = await membershipEvent(roomId, bob, 'leave');
        expect(leave.sender).toBe(bob);
        expect(leave.content).toEqual({ membership: 'leave', reason: 'Account deactivated' });
      }
      expect(await joinedMembers(alice, general)).toEqual([alice]);
      expect(await joinedMembers(alice, random)).toEqual([alice]);
      expect((await ok('GET', `/_matrix/client/v3/profile/${enc(bob)}`))).toEqual({});
      // No member event carried the profile again after the leave.
      const after = bridge.received.events((e) => e.type === 'm.room.member' && e.state_key === bob);
      expect(after[after.length - 1].content.membership).toBe('leave');
      // Aliases the user created stay.
      expect((await ok('GET', `/_matrix/client/v3/directory/room/${enc('#rc_bobs:life.test')}`)).room_id).toBe(general);
    });

    it('refuses anything more as the user, and the user ID is never registered again', async () => {
      for (const [method, pathAndQuery, body] of [
        ['GET', `/_matrix/client/v3/account/whoami?${as(bob)}`, undefined],
        ['PUT', `/_matrix/client/v3/rooms/${enc(general)}/send/m.room.message/t1?${as(bob)}`, { msgtype: 'm.text', body: 'still here?' }],
        ['POST', `/_matrix/client/v3/rooms/${enc(general)}/join?${as(bob)}`, {}],
        ['PUT', `/_matrix/client/v3/profile/${enc(bob)}/displayname?${as(bob)}`, { displayname: 'back' }],
        ['POST', `/_matrix/client/v3/account/deactivate?${as(bob)}`, {}],
      ] as const) {
        expect(await call(method, pathAndQuery, body)).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_USER_DEACTIVATED', error: expect.any(String) }) });
      }
      expect(await call('POST', '/_matrix/client/v3/register', { type: 'm.login.application_service', username: 'rc_bob', inhibit_login: true })).toEqual({
        status: 400,
        body: expect.objectContaining({ errcode: 'M_USER_IN_USE' }),
      });
      expect(await joinedMembers(alice, general)).toEqual([alice]);
    });

    it('through the Synapse admin call, idempotently; the audit store says what happened', async () => {
      await join(dave, general);
      await ok('PUT', `/_matrix/client/v3/profile/${enc(dave)}/displayname?${as(dave)}`, { displayname: 'Dave' });
      const answer = await call('POST', adminPath(`v1/deactivate/${enc(dave)}`), {});
      expect(answer).toEqual({ status: 200, body: { id_server_unbind_result: 'success' } });
      await membershipEvent(general, dave, 'leave');
      // Without erase the profile stays; erase on a second call erases it.
      expect((await ok('GET', `/_matrix/client/v3/profile/${enc(dave)}`)).displayname).toBe('Dave');
      expect(await call('POST', adminPath(`v1/deactivate/${enc(dave)}`), { erase: true })).toEqual({ status: 200, body: { id_server_unbind_result: 'success' } });
      expect(await ok('GET', `/_matrix/client/v3/profile/${enc(dave)}`)).toEqual({});
      expect(bridge.received.events((e) => e.type === 'm.room.member' && e.state_key === dave && e.content.membership === 'leave')).toHaveLength(1);

      const audit = await platform.store.audit.query({ reason: 'user_deactivated' });
      const forBob = audit.find((r) => r.details?.userId === bob);
      expect(forBob).toMatchObject({ direction: 'in', origin: `appservice:${bridge.registration.id}`, outcome: 'ok', path: '/_matrix/client/v3/account/deactivate' });
      expect((forBob?.details?.left as { roomId: string }[]).map((l) => l.roomId).sort()).toEqual([general, random, invitedTo].sort());
      expect(audit.filter((r) => r.details?.userId === dave).map((r) => r.details?.erased)).toEqual([true, false]);
    });
  });

  describe('deleting a room', () => {
    let doomed: string;
    const alias = '#rc_doomed:life.test';

    beforeAll(async () => {
      doomed = await createRoom(alice, { preset: 'public_chat', name: 'doomed', room_alias_name: 'rc_doomed' });
      await join(carol, doomed);
      await join(erin, doomed);
      expect(await joinedMembers(alice, doomed)).toEqual([alice, carol, erin].sort());
    });

    it('with three local members and block: all leave with the message, the alias goes, the server leaves the room', async () => {
      const answer = await call('DELETE', adminPath(`v1/rooms/${enc(doomed)}`), { block: true, message: 'closed by the chat admins' });
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ kicked_users: expect.arrayContaining([alice, carol, erin]), failed_to_kick_users: [], local_aliases: [alias], new_room_id: null });
      expect(answer.body.kicked_users).toHaveLength(3);
      for (const userId of [alice, carol, erin]) {
        const leave = await membershipEvent(doomed, userId, 'leave');
        expect(leave).toMatchObject({ sender: userId, content: { membership: 'leave', reason: 'closed by the chat admins' } });
        expect((await ok('GET', `/_matrix/client/v3/joined_rooms?${as(userId)}`)).joined_rooms).not.toContain(doomed);
      }
      expect(await call('GET', `/_matrix/client/v3/directory/room/${enc(alias)}`)).toEqual({ status: 404, body: expect.objectContaining({ errcode: 'M_NOT_FOUND' }) });
      // No local member left: not joined any more, so not in the public room directory either.
      expect(await platform.store.rooms.getJoinedServers(doomed)).not.toContain(serverName);
      expect(await platform.store.rooms.roomsOfServer(serverName)).not.toContain(doomed);
    });

    it('refuses local joins once blocked, and serves nothing of a purged room', async () => {
      expect(await call('POST', `/_matrix/client/v3/rooms/${enc(doomed)}/join?${as(carol)}`, {})).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
      expect(await call('POST', `/_matrix/client/v3/join/${enc(doomed)}?${as(carol)}`, {})).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
      expect(await call('GET', `/_matrix/client/v3/rooms/${enc(doomed)}/state?${as(alice)}`)).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
      const status = await ok('GET', adminPath(`v2/rooms/${enc(doomed)}/delete_status`));
      expect(status.results).toEqual([{ delete_id: expect.any(String), status: 'complete', shutdown_room: expect.objectContaining({ local_aliases: [alias] }) }]);
      const audit = await platform.store.audit.query({ reason: 'room_deleted' });
      expect(audit.find((r) => r.details?.roomId === doomed)).toMatchObject({ outcome: 'ok', details: { block: true, purge: true, kicked_users: expect.arrayContaining([alice, carol, erin]) } });
    });

    it('the v2 call without purge: the state when they left stays readable until the room is forgotten', async () => {
      const kept = await createRoom(carol, { preset: 'public_chat', name: 'kept history' });
      await ok('PUT', `/_matrix/client/v3/rooms/${enc(kept)}/state/m.room.topic/?${as(carol)}`, { topic: 'before deletion' });
      expect(await call('POST', `/_matrix/client/v3/rooms/${enc(kept)}/forget?${as(carol)}`, {})).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_UNKNOWN' }) });
      const { delete_id: deleteId } = await ok('DELETE', adminPath(`v2/rooms/${enc(kept)}`), { purge: false });
      expect(deleteId).toEqual(expect.any(String));
      expect(await ok('GET', adminPath(`v2/rooms/delete_status/${enc(deleteId)}`))).toEqual({
        status: 'complete',
        shutdown_room: { kicked_users: [carol], failed_to_kick_users: [], local_aliases: [], new_room_id: null },
      });
      await membershipEvent(kept, carol, 'leave');
      const state = await ok('GET', `/_matrix/client/v3/rooms/${enc(kept)}/state?${as(carol)}`);
      expect(state).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'm.room.member', state_key: carol, content: expect.objectContaining({ membership: 'leave' }) })]));
      expect(await ok('GET', `/_matrix/client/v3/rooms/${enc(kept)}/state/m.room.topic/?${as(carol)}`)).toEqual({ topic: 'before deletion' });
      // Reads beyond the state still need membership.
      expect((await call('GET', `/_matrix/client/v3/rooms/${enc(kept)}/messages?${as(carol)}`)).status).toBe(403);
      // Someone who never joined sees nothing.
      expect((await call('GET', `/_matrix/client/v3/rooms/${enc(kept)}/state?${as(erin)}`)).status).toBe(403);
      expect(await call('POST', `/_matrix/client/v3/rooms/${enc(kept)}/forget?${as(carol)}`, {})).toEqual({ status: 200, body: {} });
      expect(await call('GET', `/_matrix/client/v3/rooms/${enc(kept)}/state?${as(carol)}`)).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
      // Not blocked: joining again works, and ends the forgetting.
      await join(carol, kept);
      expect((await call('GET', `/_matrix/client/v3/rooms/${enc(kept)}/state?${as(carol)}`)).status).toBe(200);
    });

    it('blocking a room this server never knew is the operator’s act, refused to an application service (issue 18 defect 4)', async () => {
      const unknown = '!never-seen:elsewhere.test';
      expect(await call('DELETE', adminPath(`v1/rooms/${enc(unknown)}`), { block: true })).toEqual({
        status: 403,
        body: expect.objectContaining({ errcode: 'M_FORBIDDEN', error: expect.stringMatching(/operator/) }),
      });
      expect(await platform.store.chatLifecycle.getRoomDeletion(unknown)).toBeUndefined();
    });
  });

  describe('bad input gets the Matrix error and changes nothing', () => {
    let shared: string;
    let xxUser: string;
    let before: { members: string[]; aliases: string[]; deactivated: number; deletions: number };
    const snapshot = async () => ({
      members: await joinedMembers(alice, shared),
      aliases: (await platform.store.aliases.forRoom(shared)).map((a) => a.alias),
      deactivated: (await platform.store.audit.query({ reason: 'user_deactivated' })).length,
      deletions: (await platform.store.audit.query({ reason: 'room_deleted' })).length,
    });

    beforeAll(async () => {
      shared = await createRoom(alice, { preset: 'public_chat', name: 'shared', room_alias_name: 'rc_shared' });
      xxUser = await register('xx_zed', otherToken);
      await join(xxUser, shared, otherToken);
      before = await snapshot();
      expect(before.members).toEqual([alice, xxUser].sort());
    });

    afterAll(async () => {
      expect(await snapshot()).toEqual(before);
    });

    it.each([
      ['deactivating a user outside the namespace', 'POST', () => adminPath(`v1/deactivate/${enc('@mallory:life.test')}`), {}, 403, 'M_FORBIDDEN'],
      ['deactivating another service’s exclusive user', 'POST', () => adminPath(`v1/deactivate/${enc(xxUser)}`), {}, 403, 'M_EXCLUSIVE'],
      ['deactivating a remote user', 'POST', () => adminPath(`v1/deactivate/${enc('@rc_x:elsewhere.test')}`), {}, 400, 'M_INVALID_PARAM'],
      ['deactivating a malformed user ID', 'POST', () => adminPath('v1/deactivate/rc_alice'), {}, 400, 'M_INVALID_PARAM'],
      ['deactivating an unregistered user', 'POST', () => adminPath(`v1/deactivate/${enc('@rc_nobody:life.test')}`), {}, 404, 'M_NOT_FOUND'],
      ['deactivating with a non-boolean erase', 'POST', () => adminPath(`v1/deactivate/${enc(alice)}`), { erase: 'yes' }, 400, 'M_BAD_JSON'],
      ['deactivating the service’s own sender', 'POST', () => adminPath(`v1/deactivate/${enc(`@${bridge.registration.sender_localpart}:${serverName}`)}`), {}, 403, 'M_FORBIDDEN'],
      ['account/deactivate as a user outside the namespace', 'POST', () => `/_matrix/client/v3/account/deactivate?${as('@mallory:life.test')}`, {}, 403, 'M_FORBIDDEN'],
      ['deleting a room with another service’s user in it', 'DELETE', () => adminPath(`v1/rooms/${enc(shared)}`), {}, 403, 'M_FORBIDDEN'],
      ['deleting an unknown room', 'DELETE', () => adminPath(`v1/rooms/${enc('!nope:life.test')}`), {}, 404, 'M_NOT_FOUND'],
      ['deleting an invalid room ID', 'DELETE', () => adminPath('v2/rooms/not-a-room'), {}, 400, 'M_INVALID_PARAM'],
      ['deleting with new_room_user_id', 'DELETE', () => adminPath(`v1/rooms/${enc(shared)}`), { new_room_user_id: '@rc_admin:life.test' }, 400, 'M_INVALID_PARAM'],
      ['deleting with a non-boolean block', 'DELETE', () => adminPath(`v2/rooms/${enc(shared)}`), { block: 'yes' }, 400, 'M_BAD_JSON'],
      ['the status of an unknown deletion', 'GET', () => adminPath('v2/rooms/delete_status/nope'), undefined, 404, 'M_NOT_FOUND'],
    ] as const)('%s', async (_name, method, pathOf, body, status, errcode) => {
      expect(await call(method, pathOf(), body)).toEqual({ status, body: expect.objectContaining({ errcode, error: expect.any(String) }) });
    });

    it('admin calls without a token, or with another service’s token on our users', async () => {
      expect(await call('POST', adminPath(`v1/deactivate/${enc(alice)}`), {}, null)).toEqual({ status: 401, body: expect.objectContaining({ errcode: 'M_MISSING_TOKEN' }) });
      expect(await call('POST', adminPath(`v1/deactivate/${enc(alice)}`), {}, otherToken)).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_EXCLUSIVE' }) });
      expect(await call('DELETE', adminPath(`v1/rooms/${enc(shared)}`), {}, otherToken)).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
    });
  });
  describe('the upload limit is one setting', () => {
    const upload = (size: number) =>
      fetch(`${base}/_matrix/media/v3/upload?filename=blob.bin&${as(alice)}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(size),
      });

    it('the AS is told limits.maxUploadBytes, an upload of exactly that size is taken and one byte more refused', async () => {
      for (const route of ['/_matrix/media/v3/config', '/_matrix/client/v1/media/config']) expect(await ok('GET', route)).toEqual({ 'm.upload.size': UPLOAD_LIMIT });
      const atLimit = await upload(UPLOAD_LIMIT);
      expect(atLimit.status).toBe(200);
      expect(await atLimit.json()).toEqual({ content_uri: expect.stringMatching(/^mxc:\/\/life\.test\//) });
      const over = await upload(UPLOAD_LIMIT + 1);
      expect(over.status).toBe(413);
      expect(await over.json()).toEqual(expect.objectContaining({ errcode: 'M_TOO_LARGE' }));
    });

    it('a deactivated user uploads nothing', async () => {
      const response = await fetch(`${base}/_matrix/media/v3/upload?${as(bob)}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: 'x' });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual(expect.objectContaining({ errcode: 'M_USER_DEACTIVATED' }));
    });
  });
});
