// Issue 14: third-party invites. `exchange_third_party_invite` turns a bound third-party invite into the
// inviter's own invite, only when the room's m.room.third_party_invite, its sender and the identity server's
// signature agree, the signing key is still valid by the (trusted) identity server, and the asking server is the
// invitee's; `3pid/onbind` does the same for invites of our users.
import type { CreateEventCommand, CreateEventReply } from '@fedgate/bus';
import { signJson, SigningKey } from '@fedgate/protocol';
import { startTestIdentityServer, TEST_IDENTITY_SERVER_NAME, type TestIdentityServer } from '@fedgate/testing';
import { auditOnceRecorded, INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

const impostorIdentityServer = new SigningKey('0', new Uint8Array(32).fill(4));

describe('third-party invites over federation', () => {
  let h: IngressHarness;
  let room: RoomBuilder;
  let ids: TestIdentityServer;
  let identityServer: SigningKey;
  const keyValidityUrl = `https://${TEST_IDENTITY_SERVER_NAME}/_matrix/identity/v2/pubkey/isvalid`;
  const created: CreateEventCommand[] = [];
  let stop: () => Promise<void>;
  const alice = `@alice:${INGRESS_NAME}`;
  const enc = encodeURIComponent;

  beforeAll(async () => {
    ids = await startTestIdentityServer();
    identityServer = ids.key;
    // Short, so the stalled identity server case does not hold the file long.
    h = await startIngress({}, { config: { thirdPartyInvites: { identityServers: [{ serverName: TEST_IDENTITY_SERVER_NAME, baseUrl: ids.baseUrl }], requestTimeoutMs: 300 } } });
    const sub = await h.bus.serve<CreateEventCommand, CreateEventReply>(h.topology.createEvent.command, (command) => {
      created.push(command);
      return { ok: true, eventId: `$invite-${created.length}` };
    });
    stop = () => sub.stop();
    room = await RoomBuilder.create(h, '!tpi:ingress.test', 'shared');
    await room.member(alice, 'join');
    await room.setState('m.room.third_party_invite', 'tok-1', { display_name: 'b...@example.org', key_validity_url: keyValidityUrl, public_key: identityServer.publicKeyBase64 }, alice);
  }, 60_000);
  afterAll(async () => {
    await stop();
    await h.close();
    await ids.close();
  });

  const signedFor = (mxid: string, token = 'tok-1', key = identityServer) => signJson({ mxid, sender: alice, token }, TEST_IDENTITY_SERVER_NAME, key);
  const exchangeBody = (target: string, signed: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
    type: 'm.room.member',
    room_id: room.roomId,
    sender: alice,
    state_key: target,
    content: { membership: 'invite', third_party_invite: { signed } },
    ...overrides,
  });
  const exchange = (body: unknown, client = h.remote.client()) => client.putJson(INGRESS_NAME, `/_matrix/federation/v1/exchange_third_party_invite/${enc(room.roomId)}`, body);

  it('issues the inviter’s invite, with the display name from the room’s third-party invite', async () => {
    const bob = h.remote.user('bob');
    const signed = signedFor(bob);
    expect((await exchange(exchangeBody(bob, signed))).body).toEqual({});
    expect(created.at(-1)).toEqual({
      roomId: room.roomId,
      sender: alice,
      type: 'm.room.member',
      stateKey: bob,
      content: { membership: 'invite', third_party_invite: { display_name: 'b...@example.org', signed } },
      txnId: `3pid-invite:tok-1:${bob}`,
    });
  });

  it('the lying peer: another server’s user, an unknown token, a forged signature, a foreign inviter, a malformed body', async () => {
    const before = created.length;
    const bob = h.remote.user('bob');
    // The asking server is not the invitee's.
    expect(await refusal(exchange(exchangeBody(h.other.user('olga'), signedFor(h.other.user('olga')))))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(await refusal(exchange(exchangeBody(bob, signedFor(bob, 'tok-unknown'))))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(await refusal(exchange(exchangeBody(bob, signedFor(bob, 'tok-1', impostorIdentityServer))))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(await refusal(exchange(exchangeBody(bob, signedFor(bob), { sender: h.remote.user('mallory') })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(exchange(exchangeBody(bob, signedFor(h.remote.user('eve')))))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    expect(await refusal(exchange(exchangeBody(bob, signedFor(bob), { room_id: '!other:ingress.test' })))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    expect(await refusal(exchange([1, 2]))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    expect(created.length).toBe(before);
  });

  it('strict origin check: an invitee or inviter without the "@" sigil (`x:<server>`) is refused as no user at all', async () => {
    const before = created.length;
    const noSigil = `x:${h.remote.serverName}`;
    expect(await refusal(exchange(exchangeBody(noSigil, signedFor(noSigil))))).toMatchObject({ status: 400 });
    expect(await refusal(exchange(exchangeBody(h.remote.user('bob'), signedFor(h.remote.user('bob')), { sender: `x:${INGRESS_NAME}` })))).toMatchObject({ status: 400 });
    expect(created.length).toBe(before);
  });

  describe('the signing key checked at the key_validity_url, as the inviter’s server must (the exchange once checked only the signature)', () => {
    const before = () => created.length;
    afterEach(() => {
      ids.keyChecks.revoked.clear();
      ids.keyChecks.stalled = false;
    });

    it('asks the trusted identity server, at its configured address, about the key that signed', async () => {
      const asked = ids.keyChecks.asked.length;
      const fay = h.remote.user('fay');
      expect((await exchange(exchangeBody(fay, signedFor(fay)))).body).toEqual({});
      expect(ids.keyChecks.asked.slice(asked)).toContain(identityServer.publicKeyBase64);
      expect(created.at(-1)).toMatchObject({ stateKey: fay });
    });

    it('refuses a revoked key with 403 and an audit reason, and issues nothing', async () => {
      ids.keyChecks.revoked.add(identityServer.publicKeyBase64);
      const count = before();
      const gus = h.remote.user('gus');
      expect(await refusal(exchange(exchangeBody(gus, signedFor(gus))))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(created.length).toBe(count);
      await auditOnceRecorded(h.store, (r) => r.reason === 'third_party_invite_key_revoked');
    });

    it('an identity server that does not answer in time: 502, nothing issued, and the retry once it answers succeeds', async () => {
      ids.keyChecks.stalled = true;
      const count = before();
      const hal = h.remote.user('hal');
      expect(await refusal(exchange(exchangeBody(hal, signedFor(hal))))).toEqual({ status: 502, errcode: 'M_UNKNOWN' });
      expect(created.length).toBe(count);
      await auditOnceRecorded(h.store, (r) => r.reason === 'third_party_invite_key_unchecked');
      ids.keyChecks.stalled = false;
      expect((await exchange(exchangeBody(hal, signedFor(hal)))).body).toEqual({});
      expect(created.at(-1)).toMatchObject({ stateKey: hal });
    });

    it('an invite whose key_validity_url is not at a trusted identity server (an address to make us fetch) is refused without fetching it', async () => {
      const untrusted = 'https://127.0.0.1:9/internal?x=1';
      await room.setState('m.room.third_party_invite', 'tok-untrusted', { display_name: 'i...', key_validity_url: untrusted, public_key: identityServer.publicKeyBase64 }, alice);
      const count = before();
      const ivy = h.remote.user('ivy');
      expect(await refusal(exchange(exchangeBody(ivy, signedFor(ivy, 'tok-untrusted'))))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(created.length).toBe(count);
      await auditOnceRecorded(h.store, (r) => r.reason === 'third_party_invite_key_untrusted');
    });

    it('a key listed in public_keys without a key_validity_url is valid indefinitely (nothing to ask)', async () => {
      const ownKey = new SigningKey('0', new Uint8Array(32).fill(6));
      await room.setState('m.room.third_party_invite', 'tok-forever', { display_name: 'j...', key_validity_url: keyValidityUrl, public_key: identityServer.publicKeyBase64, public_keys: [{ public_key: ownKey.publicKeyBase64 }] }, alice);
      const asked = ids.keyChecks.asked.length;
      const jo = h.remote.user('jo');
      expect((await exchange(exchangeBody(jo, signedFor(jo, 'tok-forever', ownKey))))).toMatchObject({ body: {} });
      expect(ids.keyChecks.asked.length).toBe(asked);
    });
  });

  it('onbind for a user of ours whose inviter is ours issues the invite here, and records each outcome', async () => {
    const carol = `@carol:${INGRESS_NAME}`;
    const signed = signedFor(carol);
    const invite = (roomId: string) => ({ address: 'c@example.org', medium: 'email', mxid: carol, room_id: roomId, sender: alice, signed });
    const body = { address: 'c@example.org', medium: 'email', mxid: carol, invites: [invite(room.roomId), invite('!unknown:ingress.test')] };
    // The identity server does not sign its request.
    expect((await h.remote.client().putJson(INGRESS_NAME, '/_matrix/federation/v1/3pid/onbind', body)).body).toEqual({});
    expect(created.at(-1)).toMatchObject({ roomId: room.roomId, sender: alice, stateKey: carol });
    const record = (await h.store.audit.query({ limit: 20 })).find((r) => r.path === '/_matrix/federation/v1/3pid/onbind');
    expect(record).toMatchObject({ origin: 'identity-server', reason: 'third_party_invite_exchange_failed' });
    expect(JSON.stringify(record?.details)).toContain('M_NOT_FOUND');
  });

  it('onbind by POST, as Sydent sends it and Synapse serves it (the spec says PUT), is served alike (was 404)', async () => {
    const erin = `@erin:${INGRESS_NAME}`;
    const body = { address: 'e@example.org', medium: 'email', mxid: erin, invites: [{ address: 'e@example.org', medium: 'email', mxid: erin, room_id: room.roomId, sender: alice, signed: signedFor(erin) }] };
    const answer = await h.remote.client().postJson(INGRESS_NAME, '/_matrix/federation/v1/3pid/onbind', body);
    expect(answer).toMatchObject({ status: 200, body: {} });
    expect(created.at(-1)).toMatchObject({ roomId: room.roomId, sender: alice, stateKey: erin });
  });

  it('onbind for a remote inviter in a room we are in: a proof the room’s m.room.third_party_invite does not vouch for is refused here, without asking the inviter (it was forwarded)', async () => {
    const remoteSigner = { serverName: h.remote.serverName, key: h.remote.key };
    const mallory = h.remote.user('mallory');
    await room.member(mallory, 'join', remoteSigner);
    await room.setState('m.room.third_party_invite', 'tok-remote', { display_name: 'f...@example.org', key_validity_url: keyValidityUrl, public_key: identityServer.publicKeyBase64 }, mallory, remoteSigner);
    const frank = `@frank:${INGRESS_NAME}`;
    const onbindRecords = async () => (await h.store.audit.query({ direction: 'in', limit: 1000 })).filter((r) => r.path === '/_matrix/federation/v1/3pid/onbind' && JSON.stringify(r.details).includes(room.roomId)).map((r) => JSON.stringify(r));
    const onbindOf = async (sender: string, key: SigningKey) => {
      const before = new Set(await onbindRecords());
      const signed = signJson({ mxid: frank, sender, token: 'tok-remote' }, TEST_IDENTITY_SERVER_NAME, key);
      const body = { address: 'f@example.org', medium: 'email', mxid: frank, invites: [{ address: 'f@example.org', medium: 'email', mxid: frank, room_id: room.roomId, sender, signed }] };
      expect(await h.remote.client().postJson(INGRESS_NAME, '/_matrix/federation/v1/3pid/onbind', body)).toMatchObject({ status: 200, body: {} });
      // The audit record is written once the answer is sent.
      for (;;) {
        const added = (await onbindRecords()).find((r) => !before.has(r));
        if (added) return JSON.parse(added) as Record<string, unknown>;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const forged = await onbindOf(mallory, impostorIdentityServer);
    expect(forged).toMatchObject({ origin: 'identity-server', reason: 'third_party_invite_exchange_failed' });
    expect(JSON.stringify(forged.details)).toContain("M_FORBIDDEN: The identity server's signature does not verify");
    // Named as sent by someone else than the room's third-party invite says: refused here too.
    const notTheInviter = await onbindOf(h.remote.user('olga'), identityServer);
    expect(JSON.stringify(notTheInviter.details)).toContain('M_FORBIDDEN: The third-party invite was not sent by this inviter');
    // A genuine proof passes the check and goes on to the inviter's server (this harness has no federation client).
    const genuine = await onbindOf(mallory, identityServer);
    expect(JSON.stringify(genuine.details)).toContain('No federation client');
  });

  it('onbind refuses a user of another server and invites for someone else', async () => {
    const dave = h.remote.user('dave');
    expect(await refusal(h.remote.client().putJson(INGRESS_NAME, '/_matrix/federation/v1/3pid/onbind', { mxid: dave, invites: [] }))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    const carol = `@carol:${INGRESS_NAME}`;
    const body = { mxid: carol, invites: [{ mxid: `@erin:${INGRESS_NAME}`, room_id: room.roomId, sender: alice, signed: signedFor(carol) }] };
    expect(await refusal(h.remote.client().putJson(INGRESS_NAME, '/_matrix/federation/v1/3pid/onbind', body))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
  });
});
