// Issue 14: a third-party invite end to end between two fedgates. Alice (on A) invites an email address through
// the client-server API (`POST /rooms/{roomId}/invite` with `id_server`): A looks the address up at the identity
// server (this test plays it), finds it unbound, stores the invite there and puts the m.room.third_party_invite
// with the identity server's token and public key into the room. When
// the address is bound to Bob (on B), the identity server calls B's `3pid/onbind`; B asks A
// `exchange_third_party_invite`; A checks the signed invite against the room and issues Alice's invite to Bob
// by the invite API; Bob's bridge is told and Bob joins.
import { request } from 'node:https';
import { Method } from 'matrix-js-sdk';
import { signJson, SigningKey } from '@fedgate/protocol';
import {
  createTestCa,
  openInstanceStore,
  startFedgatePair,
  startTestIdentityServer,
  TEST_IDENTITY_ACCESS_TOKEN,
  TEST_IDENTITY_SERVER_NAME,
  type FedgateInstance,
  type TestBridge,
  type TestCertificateAuthority,
  type TestIdentityServer,
} from '@fedgate/testing';

jest.setTimeout(180_000);

const WAIT_MS = 30_000;

describe('third-party invites end to end (issue 14)', () => {
  let ca: TestCertificateAuthority;
  let a: FedgateInstance;
  let b: FedgateInstance;
  let ids: TestIdentityServer;

  beforeAll(async () => {
    ca = createTestCa();
    ids = await startTestIdentityServer({ tokenPrefix: 'email-token' });
    const thirdPartyInvites = { identityServers: [{ serverName: TEST_IDENTITY_SERVER_NAME, baseUrl: ids.baseUrl }] };
    [a, b] = await startFedgatePair({ shape: 'embedded', ca, name: 'a', config: { thirdPartyInvites } }, { shape: 'embedded', ca, name: 'b' });
  }, 180_000);
  afterAll(async () => {
    await Promise.all([a?.destroy(), b?.destroy()]);
    await ids?.close();
  }, 60_000);

  /** Alice's bridge asks A for a third-party invite, as a client does. */
  function inviteByEmail(bridge: TestBridge, inviter: string, roomId: string, address: string): Promise<unknown> {
    const body = { id_server: TEST_IDENTITY_SERVER_NAME, id_access_token: TEST_IDENTITY_ACCESS_TOKEN, medium: 'email', address };
    return bridge.asUser(inviter).http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/invite`, undefined, body);
  }

  /** The identity server's call: plain HTTPS, no X-Matrix signature. */
  function onbind(server: FedgateInstance, body: unknown): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('/_matrix/federation/v1/3pid/onbind', server.federationUrl), { method: 'PUT', ca: ca.certPem, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      });
      req.once('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  it('onbind at the invitee’s server turns the pending invite into the inviter’s invite, and the invitee joins', async () => {
    const bridgeA = a.bridge as TestBridge;
    const bridgeB = b.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice`);
    const bob = await bridgeB.registerVirtualUser(`${b.name}chat_bob`);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never, name: 'invited by email' });
    expect(await inviteByEmail(bridgeA, alice, roomId, 'bob@example.org')).toEqual({});
    expect(ids.storedInvites).toEqual([expect.objectContaining({ medium: 'email', address: 'bob@example.org', room_id: roomId, sender: alice, room_name: 'invited by email' })]);
    const pending = await bridgeA.asUser(alice).getStateEvent(roomId, 'm.room.third_party_invite' as never, 'email-token-1');
    expect(pending).toMatchObject({ display_name: 'b...', public_key: ids.key.publicKeyBase64 });

    expect(await ids.onbind(b.federationUrl, ca.certPem, 'email', 'bob@example.org', bob)).toEqual({ status: 200, body: {} });

    const invited = await bridgeB.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'invite', WAIT_MS);
    expect(invited).toMatchObject({ sender: alice, content: { third_party_invite: { display_name: 'b...', signed: { token: 'email-token-1', mxid: bob } } } });
    // A, the inviter's server, asked the identity server whether the signing key is still valid before issuing it.
    expect(ids.keyChecks.asked).toContain(ids.key.publicKeyBase64);
    await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', WAIT_MS);

    // B asked A once, and A recorded it as accepted.
    const store = await openInstanceStore(a);
    try {
      const exchanges = (await store.audit.query({ direction: 'in', origin: b.serverName, limit: 200 })).filter((r) => r.path.startsWith('/_matrix/federation/v1/exchange_third_party_invite/'));
      expect(exchanges).toEqual([expect.objectContaining({ status: 200, outcome: 'ok' })]);
    } finally {
      await store.close();
    }
  });

  it('an address the identity server knows as bound is invited as that user at once', async () => {
    const bridgeA = a.bridge as TestBridge;
    const bridgeB = b.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice3`);
    const dave = await bridgeB.registerVirtualUser(`${b.name}chat_dave`);
    ids.bound.set('dave@example.org email', dave);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never });
    expect(await inviteByEmail(bridgeA, alice, roomId, 'dave@example.org')).toEqual({});
    const invited = await bridgeB.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === dave && e.room_id === roomId && e.content?.membership === 'invite', WAIT_MS);
    expect(invited).toMatchObject({ sender: alice });
    expect(ids.storedInvites.some((s) => s.room_id === roomId)).toBe(false);
  });

  it('createRoom with invite_3pid stores the invite at the identity server and puts the third-party invite in the new room', async () => {
    const bridgeA = a.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice5`);
    const invite = { id_server: TEST_IDENTITY_SERVER_NAME, id_access_token: TEST_IDENTITY_ACCESS_TOKEN, medium: 'email', address: 'erin@example.org' };
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never, invite_3pid: [invite] } as never);
    const stored = ids.storedInvites.findIndex((s) => s.room_id === roomId);
    expect(ids.storedInvites[stored]).toMatchObject({ address: 'erin@example.org', sender: alice });
    const pending = await bridgeA.asUser(alice).getStateEvent(roomId, 'm.room.third_party_invite' as never, `email-token-${stored + 1}`);
    expect(pending).toMatchObject({ public_key: ids.key.publicKeyBase64 });
  });

  it('an id_server A does not trust is refused with M_SERVER_NOT_TRUSTED', async () => {
    const bridgeA = a.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice4`);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never });
    const body = { id_server: 'other.example', id_access_token: TEST_IDENTITY_ACCESS_TOKEN, medium: 'email', address: 'x@example.org' };
    const refused = await bridgeA.asUser(alice).http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/invite`, undefined, body).catch((e: unknown) => e);
    expect(refused).toMatchObject({ httpStatus: 403, errcode: 'M_SERVER_NOT_TRUSTED' });
  });

  it('an onbind whose signature the room’s key does not verify issues nothing, and says why in the audit record', async () => {
    const bridgeA = a.bridge as TestBridge;
    const bridgeB = b.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice2`);
    const carol = await bridgeB.registerVirtualUser(`${b.name}chat_carol`);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never });
    await bridgeA.asUser(alice).sendStateEvent(roomId, 'm.room.third_party_invite' as never, { display_name: 'c...@example.org', key_validity_url: 'https://id.example/v', public_key: ids.key.publicKeyBase64 } as never, 'other-token');
    const forged = signJson({ mxid: carol, sender: alice, token: 'other-token' }, 'id.example', new SigningKey('0', new Uint8Array(32).fill(6)));
    const invite = { address: 'c@example.org', medium: 'email', mxid: carol, room_id: roomId, sender: alice, signed: forged };
    expect((await onbind(b, { address: 'c@example.org', medium: 'email', mxid: carol, invites: [invite] })).status).toBe(200);
    const store = await openInstanceStore(b);
    try {
      // The audit record is written once the answer is sent: wait for it.
      let record;
      for (let i = 0; i < 100 && !record; i++) {
        record = (await store.audit.query({ limit: 200 })).find((r) => r.path === '/_matrix/federation/v1/3pid/onbind' && JSON.stringify(r.details).includes(roomId));
        if (!record) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(record).toMatchObject({ origin: 'identity-server', reason: 'third_party_invite_exchange_failed' });
      expect(JSON.stringify(record?.details)).toContain('M_FORBIDDEN');
    } finally {
      await store.close();
    }
    expect(bridgeB.received.events((e) => e.state_key === carol && e.room_id === roomId)).toEqual([]);
  });
});
