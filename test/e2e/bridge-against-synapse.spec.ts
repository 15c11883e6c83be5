// The test bridge against a real homeserver: Synapse, with the bridge registered as an application
// service exactly as a chat platform's Matrix bridge would be. Proves the bridge's receiving side
// (matrix-appservice) and acting side (matrix-js-sdk with identity assertion) before fedgate has a
// client-server API of its own to point it at.
import { createClient, Direction, Preset, type MatrixClient } from 'matrix-js-sdk';
import { startSynapse, TestBridge, type SynapseHandle, type SynapseUser } from '@fedgate/testing';

jest.setTimeout(180_000);

describe('test bridge registered with Synapse', () => {
  let synapse: SynapseHandle;
  let bridge: TestBridge;
  let alice: SynapseUser;
  let aliceClient: MatrixClient;

  beforeAll(async () => {
    // Synapse reads the registration at start and picks its server name then: the bridge starts
    // first with server-agnostic namespaces and is pointed at Synapse afterwards.
    bridge = await TestBridge.start({ prefix: 'rc' });
    synapse = await startSynapse({ name: 'bridge', extraConfig: { app_service_config_files: [bridge.registrationPath] } });
    bridge.connect({ homeserverUrl: synapse.clientUrl, serverName: synapse.serverName });
    alice = await synapse.registerUser('alice');
    aliceClient = createClient({ baseUrl: synapse.clientUrl, accessToken: alice.accessToken, userId: alice.userId });
  });

  afterAll(async () => {
    aliceClient?.stopClient();
    await bridge?.stop();
    await synapse?.stop();
  });

  it('relays both ways: a virtual user hosts a room, a Synapse user talks in it', async () => {
    const virtualUserId = await bridge.registerVirtualUser('rc_bob');
    expect(virtualUserId).toBe(bridge.virtualUserId('bob'));
    await expect(bridge.registerVirtualUser('rc_bob')).resolves.toBe(virtualUserId);

    const bob = bridge.asUser(virtualUserId);
    const whoami = await bob.whoami();
    expect(whoami.user_id).toBe(virtualUserId);

    const { room_id: roomId } = await bob.createRoom({ preset: Preset.PublicChat, name: 'bridged general' });
    await aliceClient.joinRoom(roomId);
    await bridge.waitForEvent((e) => e.type === 'm.room.member' && e.room_id === roomId && e.state_key === alice.userId);

    const { event_id: aliceMessageId } = await aliceClient.sendTextMessage(roomId, 'hello from synapse');
    const pushed = await bridge.waitForEvent((e) => e.event_id === aliceMessageId);
    expect(pushed).toMatchObject({ type: 'm.room.message', room_id: roomId, sender: alice.userId, content: { body: 'hello from synapse' } });

    const { event_id: replyId } = await bob.sendTextMessage(roomId, 'hello from the chat platform');
    const messages = await aliceClient.createMessagesRequest(roomId, null, 20, Direction.Backward);
    const reply = messages.chunk.find((e) => e.event_id === replyId);
    expect(reply).toMatchObject({ sender: virtualUserId, content: { body: 'hello from the chat platform' } });
  });
});
