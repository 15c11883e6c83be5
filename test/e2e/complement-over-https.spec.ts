// Issue 16 over the wire: Complement's TestUnrejectRejectedEvents against a whole embedded gateway (ingress, the
// bus with its duplicate window, state-resolver, the room log and the bridge), played by the malicious server.
import { stateMapKey } from '@fedgate/room-state';
import { useWireArena, eventually } from '@fedgate/testing';

describe('complement behaviours over the wire (embedded gateway)', () => {
  const arena = useWireArena('complement');

  it('issue 16 defect 2 (TestUnrejectRejectedEvents): B given up for want of A, then A, then B again within the duplicate window: B reaches the bridge', async () => {
    const roomId = (await arena.bridge.asUser(arena.alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never)).room_id;
    const joined = await arena.evil.joinRoom(arena.fedgate.serverName, roomId);
    const mallory = arena.evil.evil.user('mallory');
    const auth = [joined.state.get(stateMapKey('m.room.create', ''))!, joined.state.get(stateMapKey('m.room.power_levels', ''))!, joined.join.eventId];
    const a = arena.evil.evil.sign({ room_id: roomId, sender: mallory, type: 'm.event.a', content: { event: 'A' }, prev_events: [joined.join.eventId], auth_events: auth, depth: 30 }, joined.roomVersion);
    const b = arena.evil.evil.sign({ room_id: roomId, sender: mallory, type: 'm.event.b', content: { event: 'B' }, prev_events: [a.eventId], auth_events: auth, depth: 31 }, joined.roomVersion);
    // The malicious server answers get_missing_events with nothing and state_ids with 404: B cannot be placed.
    expect((await arena.evil.sendPdus(arena.fedgate.serverName, [b], 'unreject-1')).status).toBe(200);
    // B is given up (dead-lettered) once the state at A is refused; the partition's ordered consumer settles it
    // before anything sent after it.
    const asked = await eventually(async () => arena.evil.evil.requests.some((r) => r.segments[1] === 'state_ids'), (seen) => seen);
    expect(asked).toBe(true);
    expect((await arena.evil.sendPdus(arena.fedgate.serverName, [a], 'unreject-2')).status).toBe(200);
    await arena.bridge.waitForEvent((e) => e.event_id === a.eventId, 30_000);
    expect((await arena.evil.sendPdus(arena.fedgate.serverName, [b], 'unreject-3')).status).toBe(200);
    const pushed = await arena.bridge.waitForEvent((e) => e.event_id === b.eventId, 30_000);
    expect(pushed).toMatchObject({ type: 'm.event.b', sender: mallory });
    expect(await arena.store.events.get(b.eventId)).toMatchObject({ status: 'accepted' });
  }, 120_000);
});
