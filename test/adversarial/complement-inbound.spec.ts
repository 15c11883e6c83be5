// Issue 16: Complement's federation behaviours on the inbound path (gaps, size limits, missing auth events),
// played against an in-process fedgate by a scripted peer.
import { stateMapKey } from '@fedgate/room-state';
import { aliceCanSend, arena, ALICE, currentState, type Arena } from './setup';

describe('complement: inbound events', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    t = await arena();
    roomId = await t.fedgate.createRoom(ALICE, '10');
    await t.evil.joinRoom(t.fedgate, roomId);
  });
  afterEach(() => t.network.close());

  const mallory = () => t.evil.user('mallory');

  it('issue 16 defect 1: a v10 gap through an event of 256 bytes but 128 code points closes; that event is stored rejected', async () => {
    const wide = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.topic', sender: mallory(), state_key: 'é'.repeat(128), content: { topic: 'wide' } });
    const after = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: mallory(), content: { body: 'after' }, prev_events: [wide.eventId], depth: (wide.pdu.depth as number) + 1 });
    t.evil.lie('get_missing_events', () => ({ status: 200, body: { events: [wide.pdu] } }));
    const [delivery] = await t.evil.deliver(t.fedgate, [after]);
    expect(delivery).toEqual({ eventId: after.eventId, status: 'accepted' });
    expect(await t.fedgate.store.events.get(wide.eventId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('field_too_long: state_key is 256 bytes') });
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.topic', 'é'.repeat(128)))).toBeUndefined();
    expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([after.eventId]);
    expect(await aliceCanSend(t.fedgate, roomId)).toBe(true);
  });

  it('issue 16 defect 1: the same event received directly is stored rejected with the reason, not refused unseen', async () => {
    const wide = await t.evil.eventIn(t.fedgate, roomId, { type: 'ü'.repeat(200), sender: mallory(), content: {} });
    const [delivery] = await t.evil.deliver(t.fedgate, [wide]);
    expect(delivery).toMatchObject({ status: 'rejected', reason: expect.stringContaining('field_too_long: type is 400 bytes') });
  });

  it('issue 16 defect 1: in v11 an event over 255 bytes is refused before the room sees it', async () => {
    const v11 = await t.fedgate.createRoom(ALICE, '11');
    await t.evil.joinRoom(t.fedgate, v11);
    const wide = await t.evil.eventIn(t.fedgate, v11, { type: 'm.room.topic', sender: mallory(), state_key: 'é'.repeat(128), content: { topic: 'wide' } });
    const [delivery] = await t.evil.deliver(t.fedgate, [wide]);
    expect(delivery).toMatchObject({ refused: expect.stringContaining('state_key: is 256 bytes') });
    expect(await t.fedgate.store.events.get(wide.eventId)).toBeUndefined();
  });
});
