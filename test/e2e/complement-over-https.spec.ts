// Issue 16 over the wire: Complement's TestUnrejectRejectedEvents against a whole embedded gateway (ingress, the
// bus with its duplicate window, state-resolver, the room log and the bridge), played by the malicious server.
import { stateMapKey } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { createTestCa, MaliciousHttpsServer, openInstanceStore, startFedgate, type FedgateInstance, type TestBridge } from '@fedgate/testing';

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('complement behaviours over the wire (embedded gateway)', () => {
  let fedgate: FedgateInstance;
  let evil: MaliciousHttpsServer;
  let store: Store;
  let bridge: TestBridge;
  let alice: string;

  beforeAll(async () => {
    const ca = createTestCa();
    [fedgate, evil] = await Promise.all([startFedgate({ shape: 'embedded', ca, name: 'complement' }), MaliciousHttpsServer.start(ca)]);
    store = await openInstanceStore(fedgate);
    bridge = fedgate.bridge!;
    alice = await bridge.registerVirtualUser('complementchat_alice');
  }, 240_000);

  afterAll(async () => {
    await store?.close();
    await evil?.stop();
    await fedgate?.destroy();
  }, 60_000);

  it('issue 16 defect 2 (TestUnrejectRejectedEvents): B given up for want of A, then A, then B again within the duplicate window: B reaches the bridge', async () => {
    const roomId = (await bridge.asUser(alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never)).room_id;
    const joined = await evil.joinRoom(fedgate.serverName, roomId);
    const mallory = evil.evil.user('mallory');
    const auth = [joined.state.get(stateMapKey('m.room.create', ''))!, joined.state.get(stateMapKey('m.room.power_levels', ''))!, joined.join.eventId];
    const a = evil.evil.sign({ room_id: roomId, sender: mallory, type: 'm.event.a', content: { event: 'A' }, prev_events: [joined.join.eventId], auth_events: auth, depth: 30 }, joined.roomVersion);
    const b = evil.evil.sign({ room_id: roomId, sender: mallory, type: 'm.event.b', content: { event: 'B' }, prev_events: [a.eventId], auth_events: auth, depth: 31 }, joined.roomVersion);
    // The malicious server answers get_missing_events with nothing and state_ids with 404: B cannot be placed.
    expect((await evil.sendPdus(fedgate.serverName, [b], 'unreject-1')).status).toBe(200);
    // B is given up (dead-lettered) once the state at A is refused; the partition's ordered consumer settles it
    // before anything sent after it.
    const asked = await eventually(async () => evil.evil.requests.some((r) => r.segments[1] === 'state_ids'), (seen) => seen);
    expect(asked).toBe(true);
    expect((await evil.sendPdus(fedgate.serverName, [a], 'unreject-2')).status).toBe(200);
    await bridge.waitForEvent((e) => e.event_id === a.eventId, 30_000);
    expect((await evil.sendPdus(fedgate.serverName, [b], 'unreject-3')).status).toBe(200);
    const pushed = await bridge.waitForEvent((e) => e.event_id === b.eventId, 30_000);
    expect(pushed).toMatchObject({ type: 'm.event.b', sender: mallory });
    expect(await store.events.get(b.eventId)).toMatchObject({ status: 'accepted' });
  }, 120_000);
});
