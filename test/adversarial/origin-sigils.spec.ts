// Origin checks on user IDs: a lying server names a "user" without the "@" sigil (`x:<server>`) to pass as
// its own user, or as one of ours. state-resolver's handshakes must read it as no user at all.
import { ALICE, arena, type Arena } from './setup';

describe('adversarial: IDs without their sigil in membership handshakes', () => {
  let t: Arena;
  let roomId: string;
  beforeAll(async () => {
    t = await arena();
    roomId = await t.fedgate.createRoom(ALICE, '10');
  });
  afterAll(() => t.network.close());

  it('make_join for `x:evil.test` is refused: evil.test may act only for its own users', async () => {
    const reply = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: 'x:evil.test', membership: 'join', origin: 'evil.test', supportedVersions: ['10'] });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
  });

  it('an invite whose state_key is `x:fg.test` (no "@") is no invite of our user: refused, nothing countersigned or kept', async () => {
    const room = t.evil.createRoom('10');
    const invite = t.evil.append(room, { type: 'm.room.member', state_key: 'x:fg.test', sender: t.evil.user('boss'), content: { membership: 'invite' } });
    const reply = await t.fedgate.resolver.handshakes.receiveInvite({ roomId: room.roomId, eventId: invite.eventId, roomVersion: '10', origin: 'evil.test', event: invite.pdu as never, inviteRoomState: [] });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect(await t.fedgate.store.events.get(invite.eventId)).toBeUndefined();
  });

  it('the same invite to `@x:fg.test` is countersigned (the check refuses the lie, not the invite)', async () => {
    const room = t.evil.createRoom('10');
    const invite = t.evil.append(room, { type: 'm.room.member', state_key: '@x:fg.test', sender: t.evil.user('boss'), content: { membership: 'invite' } });
    const reply = await t.fedgate.resolver.handshakes.receiveInvite({ roomId: room.roomId, eventId: invite.eventId, roomVersion: '10', origin: 'evil.test', event: invite.pdu as never, inviteRoomState: [] });
    expect(reply.ok).toBe(true);
  });

  it('a PDU whose sender is `x:evil.test` is refused on receipt, never stored', async () => {
    await t.evil.joinRoom(t.fedgate, roomId);
    const e = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: 'x:evil.test', content: { body: 'as nobody' } });
    const [delivery] = await t.evil.deliver(t.fedgate, [e]);
    expect(delivery).toMatchObject({ refused: expect.stringContaining('sender') });
    expect(await t.fedgate.store.events.get(e.eventId)).toBeUndefined();
  });
});
