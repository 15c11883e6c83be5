// Issue 10 defect 8: make_join / make_knock (and their send_) for a room every user of ours has left: the state
// and extremities are stale and we would never hear what follows, so we answer as Synapse does (404).
import { arena, ALICE, type Arena } from './setup';

describe('adversarial: handshakes for rooms we have left', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    t = await arena();
    roomId = await t.fedgate.createRoom(ALICE, '10', [{ type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'knock' } }]);
    await t.fedgate.send(roomId, ALICE, 'm.room.join_rules', { join_rule: 'public' }, { stateKey: '' });
    await t.evil.joinRoom(t.fedgate, roomId);
    const left = await t.fedgate.send(roomId, ALICE, 'm.room.member', { membership: 'leave' }, { stateKey: ALICE });
    expect(left.ok).toBe(true);
  });
  afterEach(() => t.network.close());

  it.each(['join', 'knock'] as const)('defect 8: make_%s → 404 M_NOT_FOUND', async (membership) => {
    const reply = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: t.evil.user('second'), membership, origin: 'evil.test', supportedVersions: ['10'] });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND', status: 404 });
  });

  it('defect 8: send_join built without make_join → 404 M_NOT_FOUND, nothing stored', async () => {
    const join = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.member', sender: t.evil.user('second'), state_key: t.evil.user('second'), content: { membership: 'join' } });
    const reply = await t.evil.sendJoin(t.fedgate, roomId, join, '10');
    expect(reply).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND' });
    expect(await t.fedgate.store.events.get(join.eventId)).toBeUndefined();
  });

  it('make_leave still answers (a remote user may leave through us)', async () => {
    const reply = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: t.evil.user('mallory'), membership: 'leave', origin: 'evil.test' });
    expect(reply.ok).toBe(true);
  });
});
