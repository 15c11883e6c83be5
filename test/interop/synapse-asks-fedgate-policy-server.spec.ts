// Issue 17 against a live Synapse (1.163 asks a room's policy server before sending, handlers/room_policy.py):
// a Synapse room names fedgate as its policy server; Synapse asks fedgate's /_matrix/policy/v1/sign for each of
// its users' events, sends what fedgate signs (with the policy signature on it) and refuses what fedgate refuses.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import type { Store } from '@fedgate/store';
import { openInstanceStore, type SynapseUser } from '@fedgate/testing';
import { matrixClientFor } from './support/matrix-client';
import { eventually, federationGet, membershipIs, startPeers, stopPeers, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(120_000);

const NAME = 'policy';
const POLICY = `
version: 1
rooms:
  - id: partner-rooms
    rooms: ["*"]
    attachments: { mimetypes: ["image/*"], maxBytes: 5000000 }
`;

describe('Synapse asks fedgate, the room policy server, to sign its events', () => {
  let peers: Peers;
  let dir: string;
  let store: Store;
  let alice: SynapseUser;
  let aliceClient: MatrixClient;
  let bob: string;
  let roomId: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-policy-interop-'));
    const policyFile = path.join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    peers = await startPeers(NAME, { fedgateConfig: { policyServer: { enabled: true, policyFile, reloadIntervalMs: 1000 } } });
    store = await openInstanceStore(peers.fedgate);
    alice = await peers.synapse.registerUser('alice');
    aliceClient = matrixClientFor(peers.synapse, alice);
    bob = await peers.bridge.registerVirtualUser(`${NAME}chat_bob`);
  }, 600_000);

  afterAll(async () => {
    await store?.close();
    await stopPeers(NAME, peers ?? {});
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a Synapse room with a fedgate user names fedgate as policy server, with the key from its .well-known', async () => {
    ({ room_id: roomId } = await aliceClient.createRoom({ room_version: '10', preset: Preset.PrivateChat }));
    await aliceClient.invite(roomId, bob);
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
    await peers.bridge.asUser(bob).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
    const { status, json } = await federationGet(peers.ca, `${peers.fedgate.federationUrl}/.well-known/matrix/policy_server`);
    expect(status).toBe(200);
    const { event_id } = await aliceClient.sendStateEvent(roomId, 'm.room.policy' as never, { via: peers.fedgate.serverName, public_keys: { ed25519: json.public_keys.ed25519 } } as never, '');
    await eventually(() => store.events.get(event_id), (r) => r?.status === 'accepted');
  });

  it('Synapse asks fedgate before sending a message, and sends it with fedgate\'s policy signature', async () => {
    const { event_id } = await aliceClient.sendTextMessage(roomId, 'checked by the policy server');
    const atFedgate = await peers.bridge.waitForEvent((e) => e.event_id === event_id, WAIT_MS);
    expect(atFedgate.content).toMatchObject({ body: 'checked by the policy server' });
    const record = await eventually(() => store.events.get(event_id), (r) => r !== undefined);
    expect((record!.pdu.signatures as Record<string, Record<string, string>>)[peers.fedgate.serverName]).toEqual({ 'ed25519:policy_server': expect.any(String) });
    const [audited] = await eventually(() => store.audit.query({ roomId, decision: 'signed', origin: peers.synapse.serverName }), (r) => r.some((x) => x.eventId === event_id));
    expect(audited).toMatchObject({ rule: 'partner-rooms', sender: alice.userId, server: peers.synapse.serverName });
  });

  it('Synapse refuses its user\'s forbidden attachment when fedgate will not sign it, and the event never reaches fedgate', async () => {
    await expect(
      aliceClient.sendMessage(roomId, { msgtype: 'm.file', body: 'tool.exe', url: 'mxc://example.org/x', info: { mimetype: 'application/x-msdownload', size: 100 } } as never),
    ).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    const [refused] = await eventually(() => store.audit.query({ roomId, rule: 'partner-rooms/attachments' }), (r) => r.length > 0);
    expect(refused).toMatchObject({ decision: 'refused', origin: peers.synapse.serverName, sender: alice.userId });
    // The next allowed message arrives; the refused one never came before it.
    const { event_id } = await aliceClient.sendTextMessage(roomId, 'after the refusal');
    await peers.bridge.waitForEvent((e) => e.event_id === event_id, WAIT_MS);
    expect(peers.bridge.received.events((e) => e.room_id === roomId && e.content?.body === 'tool.exe')).toEqual([]);
    expect(await store.events.get(refused!.eventId!)).toBeUndefined();
  });
});
