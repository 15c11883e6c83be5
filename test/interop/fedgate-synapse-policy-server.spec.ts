// Policy servers (spec v1.18, issue 17) between fedgate and a live Synapse. A small in-test policy server (the
// over-the-wire homeserver of the adversary harness with a `/_matrix/policy/v1/sign` of its own: it refuses
// anything that mentions spam) joins a fedgate room and is named in `m.room.policy`: fedgate and Synapse both
// ask it before sending, and each accepts the other's signed events. A second room names Synapse itself, which
// is no policy server (Synapse 1.163 never asks itself and serves no /sign): fedgate soft-fails Synapse's unsigned
// events there and refuses its own users' sends with Synapse's answer. Synapse never asks for its membership
// changes: fedgate asks on receipt, and soft-fails what the policy server will not sign.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import { encodeUnpaddedBase64, generateSigningKey, POLICY_SERVER_KEY_ID, redactedSigningText, verifyPolicyServerSignature } from '@fedgate/protocol';
import { MaliciousHttpsServer, openInstanceStore, type InterceptedRequest, type SynapseUser } from '@fedgate/testing';
import { matrixClientFor } from './support/matrix-client';
import { registerAliceAndBob } from './support/alice-and-bob';
import { eventSeenBy, eventually, initialSync, membershipIs, startPeers, stopPeers, timelineBodies, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(120_000);

const NAME = 'policy';
const ROOM_VERSION = '12';

describe('fedgate and Synapse in rooms with a policy server', () => {
  let peers: Peers;
  let policyServer: MaliciousHttpsServer;
  const policyKey = generateSigningKey('policy_server');
  const signRequests: InterceptedRequest[] = [];
  let alice: SynapseUser;
  let aliceClient: MatrixClient;
  let bob: string;
  let bobClient: MatrixClient;

  beforeAll(async () => {
    peers = await startPeers(NAME);
    policyServer = await MaliciousHttpsServer.start(peers.ca);
    policyServer.intercept = async (request) => {
      if (request.method !== 'POST' || request.path !== '/_matrix/policy/v1/sign') return undefined;
      signRequests.push(request);
      const pdu = request.body as Record<string, unknown>;
      if (JSON.stringify(pdu.content ?? {}).includes('spam')) return { status: 400, body: { errcode: 'M_FORBIDDEN', error: 'The message appears to contain possible spam' } };
      const signature = encodeUnpaddedBase64(policyKey.sign(Buffer.from(redactedSigningText(pdu, ROOM_VERSION), 'utf8')));
      return { status: 200, body: { [policyServer.name]: { [POLICY_SERVER_KEY_ID]: signature } } };
    };
    ({ alice, aliceClient, bob, bobClient } = await registerAliceAndBob(peers, NAME));
  }, 600_000);

  afterAll(async () => {
    await policyServer?.stop();
    await stopPeers(NAME, peers ?? {});
  }, 60_000);

  const signRequestsFrom = (origin: string, body: string) => signRequests.filter((r) => r.from === origin && (r.body as { content?: { body?: string } }).content?.body === body);

  /** A public room Bob (fedgate) made and Alice (Synapse) joined, naming the policy server, once Alice sees its m.room.policy. */
  async function roomUsingThePolicyServer(): Promise<{ roomId: string; policyEvent: Record<string, any> | undefined }> {
    const { room_id: roomId } = await bobClient.createRoom({ room_version: ROOM_VERSION, preset: Preset.PublicChat });
    await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
    // The spec: the policy server must have a joined user for the room to be using it.
    await policyServer.joinRoom(peers.fedgate.serverName, roomId, 'policy');
    await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => policyServer.evil.user('policy') in (r?.joined ?? {}));
    const policy = { via: policyServer.name, public_keys: { ed25519: encodeUnpaddedBase64(policyKey.publicKey) } };
    const { event_id: policyEventId } = await bobClient.sendStateEvent(roomId, 'm.room.policy' as never, policy as never, '');
    return { roomId, policyEvent: await eventSeenBy(aliceClient, roomId, policyEventId) };
  }

  describe('a policy server that signs unless it sees spam', () => {
    let roomId: string;

    beforeAll(async () => {
      let policyEvent: Record<string, any> | undefined;
      ({ roomId, policyEvent } = await roomUsingThePolicyServer());
      expect(policyEvent).toMatchObject({ type: 'm.room.policy' });
      // The m.room.policy state event itself is never sent to the policy server.
      expect(signRequests).toHaveLength(0);
    }, 120_000);

    it("fedgate asks it before sending; Synapse accepts the signed event (shown to its users, never re-asked)", async () => {
      const { event_id: eventId } = await bobClient.sendTextMessage(roomId, 'fine from fedgate');
      expect(signRequestsFrom(peers.fedgate.serverName, 'fine from fedgate')).toHaveLength(1);
      expect(await eventSeenBy(aliceClient, roomId, eventId)).toMatchObject({ sender: bob, content: { body: 'fine from fedgate' } });
      expect(await timelineBodies(aliceClient, roomId)).toContain('fine from fedgate');
      expect(signRequestsFrom(peers.synapse.serverName, 'fine from fedgate')).toHaveLength(0);
      const store = await openInstanceStore(peers.fedgate);
      try {
        const record = (await store.events.get(eventId))!;
        expect(verifyPolicyServerSignature(record.pdu, ROOM_VERSION, policyServer.name, encodeUnpaddedBase64(policyKey.publicKey))).toEqual({ valid: true });
      } finally {
        await store.close();
      }
    });

    it('an event it refuses is refused to the fedgate user with its error and never reaches Synapse', async () => {
      const refused = await bobClient.sendTextMessage(roomId, 'spam from fedgate').catch((err: unknown) => err as { errcode?: string; httpStatus?: number; data?: { error?: string } });
      expect(refused).toMatchObject({ errcode: 'M_FORBIDDEN', httpStatus: 400, data: { error: 'The message appears to contain possible spam' } });
      expect(signRequestsFrom(peers.fedgate.serverName, 'spam from fedgate')).toHaveLength(1);
      // A later message arrives; the refused one never went out.
      const { event_id: later } = await bobClient.sendTextMessage(roomId, 'after the refusal');
      await eventSeenBy(aliceClient, roomId, later);
      expect(await timelineBodies(aliceClient, roomId)).not.toContain('spam from fedgate');
      expect(policyServer.transactions.flatMap((t) => t.pdus).some((p) => (p.content as { body?: string } | undefined)?.body === 'spam from fedgate')).toBe(false);
    });

    it("Synapse asks it too, and fedgate accepts Synapse's signed events without asking again", async () => {
      const { event_id: eventId } = await aliceClient.sendTextMessage(roomId, 'fine from Synapse');
      expect(signRequestsFrom(peers.synapse.serverName, 'fine from Synapse')).toHaveLength(1);
      expect(await peers.bridge.waitForEvent((e) => e.event_id === eventId, WAIT_MS)).toMatchObject({ content: { body: 'fine from Synapse' } });
      expect(signRequestsFrom(peers.fedgate.serverName, 'fine from Synapse')).toHaveLength(0);
    });

    it('what it refuses to Synapse never reaches fedgate', async () => {
      await expect(aliceClient.sendTextMessage(roomId, 'spam from Synapse')).rejects.toMatchObject({ httpStatus: 400 });
      const { event_id: later } = await aliceClient.sendTextMessage(roomId, 'Synapse after the refusal');
      await peers.bridge.waitForEvent((e) => e.event_id === later, WAIT_MS);
      expect(peers.bridge.received.events((e) => e.room_id === roomId && e.content?.body === 'spam from Synapse')).toHaveLength(0);
    });
  });

  describe("Synapse's membership changes, which it sends without asking", () => {
    let roomId: string;
    let carol: SynapseUser;
    let carolClient: MatrixClient;

    beforeAll(async () => {
      ({ roomId } = await roomUsingThePolicyServer());
      carol = await peers.synapse.registerUser('carol');
      carolClient = matrixClientFor(peers.synapse, carol);
    }, 120_000);

    it('a join Synapse sent unsigned: fedgate asks the policy server on receipt, it signs, the join is accepted', async () => {
      // Synapse is resident already (alice), so carol's join is one of its local events: sent without a signature.
      await carolClient.joinRoom(roomId);
      const join = await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(carol.userId, 'join')(e), WAIT_MS);
      expect(signRequests.filter((r) => r.from === peers.fedgate.serverName && (r.body as { state_key?: string }).state_key === carol.userId)).toHaveLength(1);
      const store = await openInstanceStore(peers.fedgate);
      try {
        expect((await store.events.get(join.event_id as string))?.status).toBe('accepted');
      } finally {
        await store.close();
      }
    });

    it('a profile change the policy server will not sign is soft-failed by fedgate, with the reason, and never reaches the bridge', async () => {
      await carolClient.setDisplayName('carol the spammer');
      const store = await openInstanceStore(peers.fedgate);
      try {
        const refused = await eventually(
          async () => (await store.audit.query({ direction: 'out', destination: policyServer.name, reason: 'M_FORBIDDEN', limit: 100 })).filter((r) => (r.details as { roomId?: string }).roomId === roomId),
          (records) => Array.isArray(records) && records.length > 0,
        );
        const eventId = (refused[0]!.details as { eventId: string }).eventId;
        const record = await eventually(() => store.events.get(eventId), (r) => typeof r === 'object' && r !== null && 'status' in r);
        expect(record).toMatchObject({ status: 'soft_failed', reason: expect.stringMatching(/^policy_server: no ed25519:policy_server signature from .*refused: M_FORBIDDEN The message appears to contain possible spam$/) });
        expect(peers.bridge.received.events((e) => e.event_id === eventId)).toHaveLength(0);
        // fedgate's current state keeps carol's join; Synapse's has the new name.
        const state = await bobClient.roomState(roomId);
        expect(state.find((e) => e.type === 'm.room.member' && e.state_key === carol.userId)?.content).not.toMatchObject({ displayname: 'carol the spammer' });
      } finally {
        await store.close();
      }
      expect((await aliceClient.getStateEvent(roomId, 'm.room.member', carol.userId)).displayname).toBe('carol the spammer');
    });
  });

  describe('a room naming Synapse, which is no policy server', () => {
    let roomId: string;

    beforeAll(async () => {
      ({ room_id: roomId } = await aliceClient.createRoom({ room_version: ROOM_VERSION, preset: Preset.PrivateChat }));
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
      await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
      const policy = { via: peers.synapse.serverName, public_keys: { ed25519: encodeUnpaddedBase64(generateSigningKey().publicKey) } };
      const { event_id: policyEventId } = await aliceClient.sendStateEvent(roomId, 'm.room.policy' as never, policy as never, '');
      await peers.bridge.waitForEvent((e) => e.event_id === policyEventId, WAIT_MS);
    }, 120_000);

    it("Synapse's unsigned events are soft-failed by fedgate (never pushed to the bridge), the reason kept on the event", async () => {
      const { event_id: eventId } = await aliceClient.sendTextMessage(roomId, 'unsigned from Synapse');
      const store = await openInstanceStore(peers.fedgate);
      try {
        const record = await eventually(() => store.events.get(eventId), (r) => r !== undefined && typeof r === 'object' && 'status' in r);
        expect(record).toMatchObject({ status: 'soft_failed', reason: expect.stringMatching(new RegExp(`^policy_server: no ed25519:policy_server signature from ${peers.synapse.serverName.replace(/[.:]/g, '\\$&')}, and asked again ${peers.synapse.serverName.replace(/[.:]/g, '\\$&')} refused: M_UNRECOGNIZED`)) });
        const asked = await store.audit.query({ direction: 'out', destination: peers.synapse.serverName, limit: 100 });
        expect(asked.filter((r) => r.path === '/_matrix/policy/v1/sign' && (r.details as { eventId?: string } | undefined)?.eventId === eventId)).toHaveLength(1);
      } finally {
        await store.close();
      }
      expect(peers.bridge.received.events((e) => e.event_id === eventId)).toHaveLength(0);
    });

    it("a fedgate user's send is refused with the answer of the server the room names", async () => {
      const refused = await bobClient.sendTextMessage(roomId, 'from fedgate').catch((err: unknown) => err as { errcode?: string; httpStatus?: number });
      // Synapse 1.163 serves no /sign: 404 M_UNRECOGNIZED, passed on verbatim as the spec asks.
      expect(refused).toMatchObject({ httpStatus: 404, errcode: 'M_UNRECOGNIZED' });
      expect(await timelineBodies(aliceClient, roomId)).not.toContain('from fedgate');
      // Synapse's own timeline still has its message: only fedgate, honouring the room, left it out.
      expect(await timelineBodies(aliceClient, roomId)).toContain('unsigned from Synapse');
      expect((await initialSync(aliceClient)).rooms?.join?.[roomId]).toBeDefined();
    });
  });
});
