// Proves the Synapse harness itself: a real Synapse on loopback, driven through a real Matrix
// client library, serving a self-signed key document over TLS that chains to the test CA only.
import { createPublicKey, verify } from 'node:crypto';
import { Agent, request } from 'undici';
import { sharedTestCa, startSynapse, type SynapseHandle, type SynapseUser } from '@fedgate/testing';
import { matrixClientFor, messageBodies } from './support/matrix-client';

interface ServerKeys {
  server_name: string;
  valid_until_ts: number;
  verify_keys: Record<string, { key: string }>;
  signatures: Record<string, Record<string, string>>;
}

// Enough canonical JSON for a key document (ASCII strings, integers, nested objects).
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

function ed25519Key(unpaddedBase64: string) {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(unpaddedBase64, 'base64').toString('base64url') }, format: 'jwk' });
}

async function fetchServerKeys(synapse: SynapseHandle, dispatcher: Agent): Promise<ServerKeys> {
  const response = await request(`${synapse.federationUrl}/_matrix/key/v2/server`, { dispatcher });
  expect(response.statusCode).toBe(200);
  return (await response.body.json()) as ServerKeys;
}

describe('Synapse harness', () => {
  let synapse: SynapseHandle;
  let alice: SynapseUser;
  let bob: SynapseUser;
  let roomId: string;
  const trustsOnlyTestCa = new Agent({ connect: { ca: sharedTestCa().certPem } });

  beforeAll(async () => {
    synapse = await startSynapse({ ca: sharedTestCa(), name: 'harness' });
    console.info(
      `Synapse ${synapse.installation.version} (${synapse.installation.source}) ready in ${synapse.lastStartMs} ms at ${synapse.serverName}`,
    );
  }, 600_000);

  afterAll(async () => {
    await trustsOnlyTestCa.close();
    await synapse?.stop();
  });

  it('registers users through the shared-secret admin API', async () => {
    alice = await synapse.registerUser('alice', undefined, true);
    bob = await synapse.registerUser('bob');
    expect(alice.userId).toBe(`@alice:${synapse.serverName}`);
    expect(bob.userId).toBe(`@bob:${synapse.serverName}`);
    expect(alice.accessToken).toBeTruthy();
    expect(bob.deviceId).toBeTruthy();
  });

  it('hosts a room that a client library creates, joins and talks in', async () => {
    const aliceClient = matrixClientFor(synapse, alice);
    const bobClient = matrixClientFor(synapse, bob);
    ({ room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: 'public_chat' as never, name: 'harness' }));
    const create = await aliceClient.getStateEvent(roomId, 'm.room.create', '');
    expect(create.room_version).toBe('12');

    await bobClient.joinRoom(roomId);
    await aliceClient.sendTextMessage(roomId, 'hello from alice');
    await bobClient.sendTextMessage(roomId, 'hello from bob');

    expect(await messageBodies(bobClient, roomId)).toEqual(['hello from alice', 'hello from bob']);
    expect((await aliceClient.getJoinedRoomMembers(roomId)).joined).toHaveProperty(bob.userId);
  });

  it('serves a self-signed key document over TLS that chains to the test CA', async () => {
    const keys = await fetchServerKeys(synapse, trustsOnlyTestCa);
    expect(keys.server_name).toBe(synapse.serverName);
    expect(keys.valid_until_ts).toBeGreaterThan(Date.now());
    const [keyId, { key }] = Object.entries(keys.verify_keys)[0]!;
    const signature = keys.signatures[synapse.serverName]![keyId]!;
    const { signatures: _signatures, ...signed } = keys;
    expect(verify(null, Buffer.from(canonicalJson(signed)), ed25519Key(key), Buffer.from(signature, 'base64'))).toBe(true);
  });

  it('is refused by a client that does not trust the test CA', async () => {
    const systemTrust = new Agent();
    try {
      await expect(request(`${synapse.federationUrl}/_matrix/key/v2/server`, { dispatcher: systemTrust })).rejects.toThrow();
    } finally {
      await systemTrust.close();
    }
  });

  it('keeps its data, keys and name across a restart', async () => {
    const keysBefore = await fetchServerKeys(synapse, trustsOnlyTestCa);
    let downDuringOutage = false;
    await synapse.restart(async () => {
      downDuringOutage = await fetch(`${synapse.clientUrl}/_matrix/client/versions`).then(() => false, () => true);
    });
    console.info(`Synapse restarted in ${synapse.lastStartMs} ms`);
    expect(downDuringOutage).toBe(true);

    const keysAfter = await fetchServerKeys(synapse, trustsOnlyTestCa);
    expect(Object.keys(keysAfter.verify_keys)).toEqual(Object.keys(keysBefore.verify_keys));
    const bobClient = matrixClientFor(synapse, bob);
    expect(await messageBodies(bobClient, roomId)).toEqual(['hello from alice', 'hello from bob']);
    await bobClient.sendTextMessage(roomId, 'still here');
    expect(await messageBodies(matrixClientFor(synapse, alice), roomId)).toContain('still here');
  }, 120_000);
});
