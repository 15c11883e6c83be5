// Issue 14 against a live Synapse: a Synapse user invites an email address through a test identity server that
// Synapse reaches over HTTPS (test CA, trusted through SSL_CERT_FILE); the address is bound to a fedgate user, the
// identity server tells fedgate (onbind), fedgate exchanges the invite with Synapse (exchange_third_party_invite),
// the fedgate user is invited and joins. And the lying onbind, whose signature the room's keys do not verify.
import { Method, Preset, type MatrixClient } from 'matrix-js-sdk';
import { Agent, request } from 'undici';
import { SigningKey } from '@fedgate/protocol';
import type { Store } from '@fedgate/store';
import { openInstanceStore, startTestIdentityServer, type SynapseUser, type TestIdentityServer } from '@fedgate/testing';
import { matrixClientFor } from './support/matrix-client';
import { currentStateIds, eventually, membershipIs, startPeers, stopPeers, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(120_000);

const NAME = 'tpi';
const ONBIND = '/_matrix/federation/v1/3pid/onbind';

describe('a Synapse user invites an email address; a fedgate user takes the invite up (issue 14)', () => {
  let peers: Peers;
  let ids: TestIdentityServer;
  let store: Store;
  let alice: SynapseUser;
  let aliceClient: MatrixClient;
  let idAccessToken: string;
  let bob: string;

  /** A client's call to the identity server (HTTPS, trusting the test CA). */
  async function callIdentityServer(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
    const dispatcher = new Agent({ connect: { ca: peers.ca.certPem } });
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
      const res = await request(`${ids.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher });
      return { status: res.statusCode, json: await res.body.json() };
    } finally {
      await dispatcher.close();
    }
  }

  /** Alice invites `address` by email in `roomId`; answers the token of the room's m.room.third_party_invite. */
  async function inviteByEmail(roomId: string, address: string): Promise<string> {
    const before = ids.storedInvites.length;
    await aliceClient.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/invite`, undefined, { id_server: ids.serverName, id_access_token: idAccessToken, medium: 'email', address });
    expect(ids.storedInvites.slice(before)).toEqual([expect.objectContaining({ medium: 'email', address, room_id: roomId, sender: alice.userId })]);
    const token = ids.inviteTokens[before]!;
    const pending = (await aliceClient.getStateEvent(roomId, 'm.room.third_party_invite' as never, token)) as Record<string, any>;
    expect(pending.public_keys).toContainEqual({ public_key: ids.key.publicKeyBase64, key_validity_url: `https://${ids.serverName}/_matrix/identity/v2/pubkey/isvalid` });
    return token;
  }

  /** The audit record of the onbind call that named `roomId`, once written (after the answer). */
  async function onbindAuditFor(roomId: string) {
    return eventually(
      async () => (await store.audit.query({ limit: 500 })).find((r) => r.path === ONBIND && JSON.stringify(r.details ?? {}).includes(roomId)),
      (record) => record !== undefined && !(record instanceof Error),
    );
  }

  beforeAll(async () => {
    peers = await startPeers(NAME, { synapseTrustsCaForHttpClient: true });
    ids = await startTestIdentityServer({ tokenPrefix: 'syn', tls: { ca: peers.ca } });
    store = await openInstanceStore(peers.fedgate);
    alice = await peers.synapse.registerUser('alice');
    aliceClient = matrixClientFor(peers.synapse, alice);
    bob = await peers.bridge.registerVirtualUser(`${NAME}chat_bob`);
    // As a client does before inviting by email: an identity server token from an OpenID token of Alice's.
    const registered = await callIdentityServer('POST', '/_matrix/identity/v2/account/register', await aliceClient.getOpenIdToken());
    idAccessToken = registered.json?.token;
  }, 600_000);

  afterAll(async () => {
    await store?.close();
    await stopPeers(NAME, peers ?? {});
    await ids?.close();
  }, 60_000);

  it("the Synapse user gets an identity server token from an OpenID token that Synapse vouches for, and reads the terms", async () => {
    const openId = await aliceClient.getOpenIdToken();
    expect(openId.matrix_server_name).toBe(peers.synapse.serverName);
    expect(ids.accounts.get(idAccessToken)).toBe(alice.userId);
    expect(await callIdentityServer('GET', '/_matrix/identity/v2/terms')).toEqual({ status: 200, json: { policies: {} } });
    expect((await callIdentityServer('POST', '/_matrix/identity/v2/terms', { user_accepts: [] }, idAccessToken)).status).toBe(200);
    expect((await callIdentityServer('GET', '/_matrix/identity/v2/account', undefined, idAccessToken)).json).toEqual({ user_id: alice.userId });
    // A token Synapse never issued is not vouched for.
    expect((await callIdentityServer('POST', '/_matrix/identity/v2/account/register', { ...openId, access_token: 'made-up' })).status).toBe(401);
  });

  it('fedgate not in the room: Synapse stores the invite, the address is bound to a fedgate user, fedgate exchanges it with Synapse, the user is invited and joins', async () => {
    const { room_id: roomId } = await aliceClient.createRoom({ preset: Preset.PrivateChat, name: 'invited by email from Synapse' });
    const token = await inviteByEmail(roomId, 'someone@example.org');
    // The keys the room names answer as a client or server would check them.
    const pending = (await aliceClient.getStateEvent(roomId, 'm.room.third_party_invite' as never, token)) as { public_keys: Array<{ public_key: string; key_validity_url: string }> };
    const ephemeral = pending.public_keys.find((k) => k.key_validity_url.endsWith('/pubkey/ephemeral/isvalid'))!;
    expect((await callIdentityServer('GET', `/_matrix/identity/v2/pubkey/ephemeral/isvalid?public_key=${encodeURIComponent(ephemeral.public_key)}`)).json).toEqual({ valid: true });
    expect((await callIdentityServer('GET', `/_matrix/identity/v2/pubkey/isvalid?public_key=${encodeURIComponent(ephemeral.public_key)}`)).json).toEqual({ valid: false });
    expect((await callIdentityServer('GET', '/_matrix/identity/v2/pubkey/ed25519:0')).json).toEqual({ public_key: ids.key.publicKeyBase64 });
    const checksBefore = ids.keyChecks.asked.length;

    expect(await ids.bind('someone@example.org', bob, peers.fedgate.federationUrl)).toEqual({ status: 200, body: {} });
    // The bridge is told of the invite Synapse issued, with the identity server's signed proof in it.
    const invite = await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
    expect(invite).toMatchObject({ sender: alice.userId, content: { third_party_invite: { display_name: 's...', signed: { mxid: bob, token, sender: alice.userId } } } });
    // Synapse asked the identity server whether the signing key is still valid before it issued the invite.
    expect(ids.keyChecks.asked.slice(checksBefore)).toContain(ids.key.publicKeyBase64);
    expect(await onbindAuditFor(roomId)).toMatchObject({ origin: 'identity-server', details: { invites: [{ roomId, sender: alice.userId, ok: true }] } });

    await peers.bridge.asUser(bob).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
    await expectBothSidesAgree(roomId, token);
  });

  it('fedgate in the room (another fedgate user joined): fedgate holds the pending invite, then exchanges it and the bound user joins', async () => {
    const carol = await peers.bridge.registerVirtualUser(`${NAME}chat_carol`);
    const bound = await peers.bridge.registerVirtualUser(`${NAME}chat_dave`);
    const { room_id: roomId } = await aliceClient.createRoom({ preset: Preset.PrivateChat, invite: [carol] });
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(carol, 'invite')(e), WAIT_MS);
    await peers.bridge.asUser(carol).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => carol in (r?.joined ?? {}));

    const token = await inviteByEmail(roomId, 'dave@example.org');
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.third_party_invite' && e.state_key === token, WAIT_MS);

    expect(await ids.bind('dave@example.org', bound, peers.fedgate.federationUrl)).toEqual({ status: 200, body: {} });
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bound, 'invite')(e), WAIT_MS);
    // As a bridge does (auto-join on invite): at once. The bridge hears of the invite from Synapse's /invite call, before
    // Synapse's /send brings the event; fedgate, in the room, has put the invite into the room already (invite race).
    await peers.bridge.asUser(bound).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bound in (r?.joined ?? {}));
    await expectBothSidesAgree(roomId, token, bound);
  });

  describe.each([
    ['not in the room: Synapse checks the proof fedgate forwards and refuses it', false],
    ['in the room: fedgate refuses it itself and never asks Synapse (it forwarded it before)', true],
  ])('a lying onbind (signed by a key the room does not list), fedgate %s', (_, fedgateInRoom) => {
    it('is refused and audited; Synapse holds no membership for the address', async () => {
      const liar = new SigningKey('0', new Uint8Array(32).fill(9));
      const target = await peers.bridge.registerVirtualUser(`${NAME}chat_${fedgateInRoom ? 'erin' : 'frank'}`);
      const address = `${fedgateInRoom ? 'erin' : 'frank'}@example.org`;
      const { room_id: roomId } = await aliceClient.createRoom({ preset: Preset.PrivateChat });
      if (fedgateInRoom) {
        await aliceClient.invite(roomId, bob);
        await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
        await peers.bridge.asUser(bob).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      }
      const token = await inviteByEmail(roomId, address);
      if (fedgateInRoom) await peers.bridge.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.third_party_invite' && e.state_key === token, WAIT_MS);

      expect(await ids.bind(address, target, peers.fedgate.federationUrl, { signingKey: liar })).toEqual({ status: 200, body: {} });
      const record = await onbindAuditFor(roomId);
      expect(record).toMatchObject({ origin: 'identity-server', reason: 'third_party_invite_exchange_failed', details: { invites: [{ roomId, ok: false }] } });
      expect(JSON.stringify(record?.details)).toMatch(/M_FORBIDDEN/);
      const exchanges = (await store.audit.query({ direction: 'out', limit: 500 })).filter((r) => r.path === `/_matrix/federation/v1/exchange_third_party_invite/${encodeURIComponent(roomId)}`);
      if (fedgateInRoom) {
        // fedgate holds the room's m.room.third_party_invite and checks the proof itself: Synapse is never asked.
        expect(exchanges).toEqual([]);
      } else {
        // fedgate cannot check it (no room state here): Synapse is asked, checks the signature and refuses.
        expect(exchanges).toEqual([expect.objectContaining({ destination: peers.synapse.serverName, outcome: 'error', reason: 'third_party_invite_exchange_failed' })]);
      }

      // No membership for the target on Synapse, and the bridge was told of none.
      const members = (await aliceClient.http.authedRequest<{ chunk: Array<{ state_key: string }> }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/members`)).chunk;
      expect(members.map((m) => m.state_key)).not.toContain(target);
      expect(peers.bridge.received.events((e) => e.room_id === roomId && e.state_key === target)).toEqual([]);
    });
  });

  it('a key the identity server has revoked: Synapse refuses the exchange, fedgate audits it; the identity server retries once the key is valid again and the user is invited', async () => {
    const grace = await peers.bridge.registerVirtualUser(`${NAME}chat_grace`);
    const { room_id: roomId } = await aliceClient.createRoom({ preset: Preset.PrivateChat });
    await inviteByEmail(roomId, 'grace@example.org');
    ids.keyChecks.revoked.add(ids.key.publicKeyBase64);
    const checksBefore = ids.keyChecks.asked.length;
    try {
      expect(await ids.bind('grace@example.org', grace, peers.fedgate.federationUrl)).toEqual({ status: 200, body: {} });
      const refused = await onbindAuditFor(roomId);
      expect(refused).toMatchObject({ origin: 'identity-server', reason: 'third_party_invite_exchange_failed', details: { invites: [{ roomId, ok: false }] } });
      // Synapse 1.163.2 answers 500 here, not 403: it tries every key of the room's invite and re-raises the last
      // failure, the ephemeral key's signature mismatch, which is no Matrix error.
      expect(JSON.stringify(refused?.details)).toMatch(new RegExp(`${peers.synapse.serverName} answered [45]\\d\\d`));
      // Synapse asked the identity server about the key, and was told it is no longer valid.
      expect(ids.keyChecks.asked.slice(checksBefore)).toContain(ids.key.publicKeyBase64);
    } finally {
      ids.keyChecks.revoked.delete(ids.key.publicKeyBase64);
    }
    expect(peers.bridge.received.events((e) => e.room_id === roomId && e.state_key === grace)).toEqual([]);
    expect(await ids.bind('grace@example.org', grace, peers.fedgate.federationUrl)).toEqual({ status: 200, body: {} });
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(grace, 'invite')(e), WAIT_MS);
  });

  /** Synapse and fedgate report the same current state, with `who` joined through the signed third-party invite. */
  async function expectBothSidesAgree(roomId: string, token: string, who = bob): Promise<void> {
    const whoClient = peers.bridge.asUser(who);
    const synapseState = await eventually(
      () => currentStateIds(aliceClient, roomId),
      (s) => typeof s === 'object' && s !== null && `m.room.member|${who}` in s,
    );
    const fedgateState = await eventually(
      () => currentStateIds(whoClient, roomId),
      (s) => JSON.stringify(s) === JSON.stringify(synapseState),
    );
    expect(fedgateState).toEqual(synapseState);
    expect(synapseState[`m.room.third_party_invite|${token}`]).toBeDefined();
    expect(await whoClient.getStateEvent(roomId, 'm.room.member', who)).toMatchObject({ membership: 'join' });
  }
});
