// Two harness Synapses federating with each other over loopback: proves the harness configuration
// that fedgate relies on (outbound federation to 127.0.0.1/::1 allowed, peers' certificates verified
// against the test CA, keys fetched from the origin server) before any fedgate code is involved.
import { createTestCa, startSynapse, startTogether, type SynapseHandle } from '@fedgate/testing';
import { eventually, matrixClientFor, messageBodies } from './support/matrix-client';

describe('two harness Synapses federating over loopback', () => {
  const ca = createTestCa();
  let first: SynapseHandle;
  let second: SynapseHandle;

  beforeAll(async () => {
    [first, second] = await startTogether([startSynapse({ ca, name: 'federation-a' }), startSynapse({ ca, name: 'federation-b' })] as const);
  }, 600_000);

  afterAll(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it('joins a room across servers and delivers messages both ways', async () => {
    const alice = await first.registerUser('alice');
    const bob = await second.registerUser('bob');
    const aliceClient = matrixClientFor(first, alice);
    const bobClient = matrixClientFor(second, bob);
    const { room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: 'public_chat' as never });
    await aliceClient.sendTextMessage(roomId, 'before bob');

    await bobClient.joinRoom(roomId, { viaServers: [first.serverName] });
    await bobClient.sendTextMessage(roomId, 'from the second server');

    const seenByAlice = await eventually(() => messageBodies(aliceClient, roomId), (bodies) => bodies.includes('from the second server'));
    expect(seenByAlice).toEqual(['before bob', 'from the second server']);
    const members = await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (response) => bob.userId in response.joined);
    expect(members.joined).toHaveProperty(bob.userId);

    await aliceClient.sendTextMessage(roomId, 'back to the second server');
    const seenByBob = await eventually(() => messageBodies(bobClient, roomId), (bodies) => bodies.includes('back to the second server'));
    expect(seenByBob).toContain('back to the second server');
  }, 90_000);
});
