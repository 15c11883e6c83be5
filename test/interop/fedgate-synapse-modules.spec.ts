// Issue 14 against a live Synapse: the old room versions (1 and 2, whose invites once went by the v1 invite API),
// the public room directory read by a Synapse user over federation (filter, limit, since), and "jump to date"
// (timestamp_to_event) answering the same event on both servers for a room they share, and a third-party invite
// sent by a fedgate user that a Synapse user takes up (onbind at Synapse → exchange at fedgate → join); the other
// way, a fedgate user listing Synapse's directory (client-server publicRooms?server=), and OpenID tokens of each
// server resolved at its own /openid/userinfo only. docs/interop.md lists them.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import { Method } from 'matrix-js-sdk';
import { startTestIdentityServer, TEST_IDENTITY_ACCESS_TOKEN, TEST_IDENTITY_SERVER_NAME, type SynapseUser, type TestIdentityServer } from '@fedgate/testing';
import { registerAliceAndBob, synapseRoomWithBob as roomOnSynapseWithBob } from './support/alice-and-bob';
import { eventSeenBy, eventually, federationGet, initialSync, membershipIs, startPeers, stopPeers, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(120_000);

const NAME = 'modules';

describe('fedgate and Synapse: old room versions, public rooms, timestamp_to_event (issue 14)', () => {
  let peers: Peers;
  let alice: SynapseUser;
  let aliceClient: MatrixClient;
  let bob: string;
  let bobClient: MatrixClient;
  let ids: TestIdentityServer;

  beforeAll(async () => {
    ids = await startTestIdentityServer({ tokenPrefix: 'interop' });
    peers = await startPeers(NAME, {
      // Synapse serves its directory over federation, and lets its users publish rooms, only when told to.
      synapseConfig: { allow_public_rooms_over_federation: true, room_list_publication_rules: [{ action: 'allow' }] },
      fedgateConfig: { thirdPartyInvites: { identityServers: [{ serverName: TEST_IDENTITY_SERVER_NAME, baseUrl: ids.baseUrl }] } } });
    ({ alice, aliceClient, bob, bobClient } = await registerAliceAndBob(peers, NAME));
  }, 600_000);

  afterAll(async () => {
    await stopPeers(NAME, peers ?? {});
    await ids?.close();
  }, 60_000);

  const synapseRoomWithBob = (roomVersion: string, options: Record<string, unknown> = {}) => roomOnSynapseWithBob(peers, { aliceClient, bob, bobClient }, roomVersion, options);

  describe.each(['1', '2'])('room version %s', (roomVersion) => {
    it(`a Synapse user's v${roomVersion} room: the fedgate user is invited, joins, a message each way`, async () => {
      const roomId = await synapseRoomWithBob(roomVersion);
      const fromAlice = await aliceClient.sendTextMessage(roomId, `old room ${roomVersion} from Synapse`);
      expect(await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS)).toMatchObject({ content: { body: `old room ${roomVersion} from Synapse` } });
      const fromBob = await bobClient.sendTextMessage(roomId, `old room ${roomVersion} from fedgate`);
      expect(await eventSeenBy(aliceClient, roomId, fromBob.event_id)).toMatchObject({ sender: bob });
    });

    it(`a fedgate user's v${roomVersion} room: the Synapse user is invited, joins, a message each way`, async () => {
      const { room_id: roomId } = await bobClient.createRoom({ room_version: roomVersion, preset: Preset.PrivateChat });
      await bobClient.invite(roomId, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
      const fromBob = await bobClient.sendTextMessage(roomId, `v${roomVersion} hello`);
      expect(await eventSeenBy(aliceClient, roomId, fromBob.event_id)).toMatchObject({ sender: bob });
      expect((await aliceClient.getStateEvent(roomId, 'm.room.create', '')).room_version).toBe(roomVersion);
    });
  });

  it("a Synapse user reads fedgate's public room directory over federation: search term, limit and since", async () => {
    const published: string[] = [];
    for (const name of ['Lobby one', 'Lobby two', 'Back office']) {
      const { room_id: roomId } = await bobClient.createRoom({ preset: Preset.PublicChat, visibility: 'public' as never, name });
      published.push(roomId);
    }
    const { room_id: unlisted } = await bobClient.createRoom({ preset: Preset.PublicChat, name: 'Lobby unlisted' });
    const server = peers.fedgate.serverName;
    const all = await aliceClient.publicRooms({ server, limit: 50 });
    expect(all.chunk.map((r) => r.room_id).sort()).toEqual([...published].sort());
    const lobbies = await aliceClient.publicRooms({ server, filter: { generic_search_term: 'lobby' } });
    expect(lobbies.chunk.map((r) => r.name).sort()).toEqual(['Lobby one', 'Lobby two']);
    expect(lobbies.chunk.map((r) => r.room_id)).not.toContain(unlisted);
    const first = await aliceClient.publicRooms({ server, limit: 1 });
    expect(first.chunk).toHaveLength(1);
    const second = await aliceClient.publicRooms({ server, limit: 5, since: first.next_batch });
    expect([...first.chunk, ...second.chunk].map((r) => r.room_id).sort()).toEqual([...published].sort());
  });

  it("a fedgate AS user lists Synapse's public room directory through client-server publicRooms?server= (search term, limit, since)", async () => {
    const published: string[] = [];
    for (const name of ['Synapse hall one', 'Synapse hall two', 'Synapse annex']) {
      const { room_id: roomId } = await aliceClient.createRoom({ preset: Preset.PublicChat, visibility: 'public' as never, name });
      published.push(roomId);
    }
    const { room_id: unlisted } = await aliceClient.createRoom({ preset: Preset.PublicChat, name: 'Synapse hall unlisted' });
    const server = peers.synapse.serverName;
    const all = await bobClient.publicRooms({ server, limit: 50 });
    expect(all.chunk.map((r) => r.room_id)).toEqual(expect.arrayContaining(published));
    expect(all.chunk.map((r) => r.room_id)).not.toContain(unlisted);
    expect(all.chunk.find((r) => r.room_id === published[0])).toMatchObject({ name: 'Synapse hall one', num_joined_members: 1, world_readable: false, guest_can_join: false });
    const halls = await bobClient.publicRooms({ server, filter: { generic_search_term: 'hall' } });
    expect(halls.chunk.map((r) => r.name).sort()).toEqual(['Synapse hall one', 'Synapse hall two']);
    const first = await bobClient.publicRooms({ server, limit: 1 });
    expect(first.chunk).toHaveLength(1);
    expect(typeof first.next_batch).toBe('string');
    const rest = await bobClient.publicRooms({ server, limit: 50, since: first.next_batch });
    expect([...first.chunk, ...rest.chunk].map((r) => r.room_id)).toEqual(expect.arrayContaining(published));
    // A since Synapse never gave fails there (it answers 500): fedgate answers 502 with a Matrix error, not the raw failure.
    await expect(bobClient.publicRooms({ server, since: 'forged' })).rejects.toMatchObject({ httpStatus: 502, errcode: 'M_UNKNOWN' });
  });

  it('OpenID: each server resolves its own users’ tokens at /openid/userinfo and refuses the other server’s (401 M_UNKNOWN_TOKEN)', async () => {
    const [fromSynapse, fromFedgate] = await Promise.all([aliceClient.getOpenIdToken(), bobClient.getOpenIdToken()]);
    expect(fromSynapse.matrix_server_name).toBe(peers.synapse.serverName);
    expect(fromFedgate.matrix_server_name).toBe(peers.fedgate.serverName);
    const userInfo = (server: string, token: string) => federationGet(peers.ca, `https://${server}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token)}`);
    expect(await userInfo(peers.synapse.serverName, fromSynapse.access_token)).toEqual({ status: 200, json: { sub: alice.userId } });
    expect(await userInfo(peers.fedgate.serverName, fromFedgate.access_token)).toEqual({ status: 200, json: { sub: bob } });
    expect(await userInfo(peers.fedgate.serverName, fromSynapse.access_token)).toMatchObject({ status: 401, json: { errcode: 'M_UNKNOWN_TOKEN' } });
    expect(await userInfo(peers.synapse.serverName, fromFedgate.access_token)).toMatchObject({ status: 401, json: { errcode: 'M_UNKNOWN_TOKEN' } });
  });

  it('timestamp_to_event: fedgate answers the same event as Synapse for a room they share, both directions', async () => {
    const roomId = await synapseRoomWithBob('10');
    const sent: string[] = [];
    for (const body of ['first', 'second', 'third']) {
      sent.push((await aliceClient.sendTextMessage(roomId, body)).event_id);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const eventId of sent) await peers.bridge.waitForEvent((e) => e.event_id === eventId, WAIT_MS);
    const second = (await aliceClient.fetchRoomEvent(roomId, sent[1])) as { origin_server_ts: number };
    const jump = (client: MatrixClient, ts: number, dir: 'f' | 'b') =>
      client.http.authedRequest<{ event_id: string; origin_server_ts: number }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/timestamp_to_event`, { ts: String(ts), dir }, undefined, { prefix: '/_matrix/client/v1' } as never);
    for (const [ts, dir] of [[second.origin_server_ts, 'f'], [second.origin_server_ts, 'b'], [second.origin_server_ts + 1, 'f'], [second.origin_server_ts - 1, 'b']] as const) {
      const [atSynapse, atFedgate] = await Promise.all([jump(aliceClient, ts, dir), jump(bobClient, ts, dir)]);
      expect(atFedgate).toEqual(atSynapse);
    }
  });

  it('timestamp_to_event before the fedgate user joined: fedgate asks Synapse over federation, backfills the event and answers as Synapse does', async () => {
    const { room_id: roomId } = await aliceClient.createRoom({ room_version: '10', preset: Preset.PrivateChat, initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'shared' } }] });
    const early = await aliceClient.sendTextMessage(roomId, 'said before the bridge user came');
    const earlyTs = ((await aliceClient.fetchRoomEvent(roomId, early.event_id)) as { origin_server_ts: number }).origin_server_ts;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await aliceClient.invite(roomId, bob);
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
    await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    const jump = (client: MatrixClient, ts: number, dir: 'f' | 'b') =>
      client.http.authedRequest<{ event_id: string; origin_server_ts: number }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/timestamp_to_event`, { ts: String(ts), dir }, undefined, { prefix: '/_matrix/client/v1' } as never);
    const atSynapse = await jump(aliceClient, earlyTs, 'b');
    expect(atSynapse.event_id).toBe(early.event_id);
    expect(await jump(bobClient, earlyTs, 'b')).toEqual(atSynapse);
    // And the event is now held and readable here.
    expect((await bobClient.fetchRoomEvent(roomId, early.event_id)) as Record<string, unknown>).toMatchObject({ content: { body: 'said before the bridge user came' } });
  });

  it('a fedgate user invites an email address; once bound to a Synapse user, Synapse exchanges it with fedgate and the user joins', async () => {
    const { room_id: roomId } = await bobClient.createRoom({ preset: Preset.PrivateChat, name: 'email invite' });
    const body = { id_server: TEST_IDENTITY_SERVER_NAME, id_access_token: TEST_IDENTITY_ACCESS_TOKEN, medium: 'email', address: 'alice@example.org' };
    await bobClient.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/invite`, undefined, body);
    // The identity server tells Synapse; Synapse forwards the invite to fedgate (exchange_third_party_invite).
    // Synapse serves onbind by POST only (as Sydent sends it), not the spec's PUT.
    expect(await ids.onbind(peers.synapse.federationUrl, peers.ca.certPem, 'email', 'alice@example.org', alice.userId, 'POST')).toMatchObject({ status: 200 });
    await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
    await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
    // Synapse accepted the room's state, the invite with its signed third-party proof among it.
    const member = (await aliceClient.getStateEvent(roomId, 'm.room.member', alice.userId)) as Record<string, unknown>;
    expect(member).toMatchObject({ membership: 'join' });
    const invite = await eventually(
      () => aliceClient.getStateEvent(roomId, 'm.room.third_party_invite' as never, 'interop-1'),
      (c) => typeof (c as { public_key?: unknown })?.public_key === 'string',
    );
    expect(invite).toMatchObject({ public_key: ids.key.publicKeyBase64 });
  });
});
