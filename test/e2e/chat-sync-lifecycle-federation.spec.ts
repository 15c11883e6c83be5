// Chat-side deactivation and room deletion reach the other servers: two embedded fedgates over
// loopback TLS (the two-fedgate harness), each with a test bridge as its chat platform. A deactivated
// user's leave and a deleted room's leaves arrive at the other server as ordinary membership events.
import { createTestCa, startFedgatePair, type FedgateInstance, type TestBridge, type TestCertificateAuthority } from '@fedgate/testing';

const EVENT_WAIT_MS = 30_000;
jest.setTimeout(120_000);

describe('chat-side deactivation and room deletion over federation', () => {
  let ca: TestCertificateAuthority;
  let a: FedgateInstance;
  let b: FedgateInstance;
  let bridgeA: TestBridge;
  let bridgeB: TestBridge;
  let alice: string; // on A
  let anna: string; // on A
  let bob: string; // on B
  let bea: string; // on B
  let roomId: string;

  beforeAll(async () => {
    ca = createTestCa();
    [a, b] = await startFedgatePair({ shape: 'embedded', ca, name: 'la' }, { shape: 'embedded', ca, name: 'lb' });
    bridgeA = a.bridge!;
    bridgeB = b.bridge!;
    [alice, anna] = await Promise.all([bridgeA.registerVirtualUser('lachat_alice'), bridgeA.registerVirtualUser('lachat_anna')]);
    [bob, bea] = await Promise.all([bridgeB.registerVirtualUser('lbchat_bob'), bridgeB.registerVirtualUser('lbchat_bea')]);
    ({ room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'across' }));
    await bridgeA.asUser(anna).joinRoom(roomId);
    for (const userId of [bob, bea]) {
      await bridgeB.asUser(userId).joinRoom(roomId, { viaServers: [a.serverName] });
      await bridgeA.waitForEvent(membership(userId, 'join'), EVENT_WAIT_MS);
    }
  }, 240_000);

  afterAll(async () => {
    await Promise.all([a?.destroy(), b?.destroy()]);
  }, 60_000);

  const membership = (userId: string, value: string) => (e: Record<string, any>) =>
    e.room_id === roomId && e.type === 'm.room.member' && e.state_key === userId && e.content?.membership === value;

  const admin = async (instance: FedgateInstance, bridge: TestBridge, method: string, path: string, body: unknown) => {
    const response = await fetch(`${instance.clientServerUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${bridge.registration.as_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };

  it('a user deactivated on B leaves the room on A: A and its chat platform see the leave', async () => {
    const answer = await admin(b, bridgeB, 'POST', `/_synapse/admin/v1/deactivate/${encodeURIComponent(bob)}`, { erase: true });
    expect(answer).toEqual({ status: 200, body: { id_server_unbind_result: 'success' } });
    const leave = await bridgeA.waitForEvent(membership(bob, 'leave'), EVENT_WAIT_MS);
    expect(leave).toMatchObject({ sender: bob, content: { membership: 'leave', reason: 'Account deactivated' } });
    const joined = Object.keys(((await bridgeA.asUser(alice).getJoinedRoomMembers(roomId)) as { joined: Record<string, unknown> }).joined).sort();
    expect(joined).toEqual([alice, anna, bea].sort());
  });

  it('a room deleted on A: every member of A leaves, and B (still in the room) sees each leave', async () => {
    const answer = await admin(a, bridgeA, 'DELETE', `/_synapse/admin/v1/rooms/${encodeURIComponent(roomId)}`, { message: 'deleted on the chat side' });
    expect(answer.status).toBe(200);
    expect([...answer.body.kicked_users].sort()).toEqual([alice, anna].sort());
    for (const userId of [alice, anna]) {
      const leave = await bridgeB.waitForEvent(membership(userId, 'leave'), EVENT_WAIT_MS);
      expect(leave).toMatchObject({ sender: userId, content: { membership: 'leave', reason: 'deleted on the chat side' } });
    }
    const joined = Object.keys(((await bridgeB.asUser(bea).getJoinedRoomMembers(roomId)) as { joined: Record<string, unknown> }).joined);
    expect(joined).toEqual([bea]);
  });
});
