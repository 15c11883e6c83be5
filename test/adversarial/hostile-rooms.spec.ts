// Joining a room a malicious server hosts: it lies in make_join (defect 9: the room version) and in send_join
// (state that does not match its auth chain, events of another room we hold).
import { stateMapKey } from '@fedgate/room-state';
import { arena, ALICE, roomsInState, type Arena } from './setup';

describe('adversarial: joining a hostile server room', () => {
  let t: Arena;
  beforeEach(async () => {
    t = await arena();
  });
  afterEach(() => t.network.close());

  const join = (roomId: string) => t.fedgate.resolver.remoteMembership.onCommand({ roomId, userId: ALICE, membership: 'join', via: ['evil.test'] });

  it('an honest hosted room can be joined (the harness works)', async () => {
    const room = t.evil.createRoom('10');
    expect(await join(room.roomId)).toMatchObject({ ok: true });
    expect((await t.fedgate.store.rooms.get(room.roomId))?.roomVersion).toBe('10');
  });

  it('defect 9: make_join lies about the room version → the join fails, the room is not recorded', async () => {
    const room = t.evil.createRoom('10');
    t.evil.lie('make_join', async (_req, honest) => {
      const answer = await honest();
      return { status: 200, body: { ...(answer.body as object), room_version: '9' } };
    });
    const reply = await join(room.roomId);
    expect(reply).toMatchObject({ ok: false, error: expect.stringMatching(/version/) });
    expect(await t.fedgate.store.rooms.get(room.roomId)).toBeUndefined();
  });

  it('a send_join answer whose state does not match its auth chain: the unsupported state is left out', async () => {
    const room = t.evil.createRoom('10');
    // A power-levels event by someone who never joined, its auth events not in the auth chain it sends.
    const forged = t.evil.sign({ room_id: room.roomId, type: 'm.room.power_levels', state_key: '', sender: t.evil.user('ghost'), content: { users: { [t.evil.user('ghost')]: 100 } }, prev_events: [room.head], auth_events: [room.state.get(stateMapKey('m.room.create', ''))!, '$notsentanywhere'], depth: room.depth + 1 }, '10');
    t.evil.lie('send_join', async (_req, honest) => {
      const answer = (await honest()).body as { state: unknown[] };
      return { status: 200, body: { ...answer, state: [...answer.state.filter((p) => (p as { type: string }).type !== 'm.room.power_levels'), forged.pdu] } };
    });
    await join(room.roomId);
    const state = await t.fedgate.resolver.timeline.currentState(room.roomId);
    expect(state?.get(stateMapKey('m.room.power_levels', ''))).not.toBe(forged.eventId);
  });

  it('a send_join answer listing events of another room we hold: none enters the joined room state', async () => {
    const mine = await t.fedgate.createRoom(ALICE, '10');
    const mineRecords = [...(await t.fedgate.store.events.getMany([...(await t.fedgate.resolver.timeline.currentState(mine))!.values()])).values()];
    const room = t.evil.createRoom('10');
    t.evil.lie('send_join', async (_req, honest) => {
      const answer = (await honest()).body as { state: unknown[]; auth_chain: unknown[] };
      return { status: 200, body: { ...answer, state: [...answer.state, ...mineRecords.map((r) => r.pdu)] } };
    });
    expect(await join(room.roomId)).toMatchObject({ ok: true });
    expect(await roomsInState(t.fedgate, room.roomId)).toEqual(new Set([room.roomId]));
  });

  it('a send_join state without the create event → the join fails', async () => {
    const room = t.evil.createRoom('10');
    t.evil.lie('send_join', async (_req, honest) => {
      const answer = (await honest()).body as { state: Array<{ type: string }> };
      return { status: 200, body: { ...answer, state: answer.state.filter((p) => p.type !== 'm.room.create') } };
    });
    expect(await join(room.roomId)).toMatchObject({ ok: false });
    expect(await t.fedgate.store.rooms.get(room.roomId)).toBeUndefined();
  });
});
