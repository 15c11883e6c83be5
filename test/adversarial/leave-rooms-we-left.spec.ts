// make_leave / send_leave for a room no user of ours is joined to any more. Decided from the spec and Synapse:
// the spec's only refusal for make_leave is 403 ("the user is not in the room") and Synapse answers both for any
// room it knows (404 only for a room it does not know, or one it is only partially joined to), authorizing the
// leave against its own state. Unlike a join or a knock (404 here: a new member would be admitted on stale state
// and we would never hear what follows), a leave only takes someone out: a remote member rejecting an invite one
// of our users sent, or leaving, gets the leave into the room through us instead of only forgetting it locally.
import { MaliciousServer } from '@fedgate/testing';
import { arenaWithEvilJoined, ALICE, type Arena } from './setup';

describe('adversarial: make_leave / send_leave for rooms we have left', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    ({ t, roomId } = await arenaWithEvilJoined());
    await MaliciousServer.on(t.network, 'other.test').joinRoom(t.fedgate, roomId, 'olga');
    const left = await t.fedgate.send(roomId, ALICE, 'm.room.member', { membership: 'leave' }, { stateKey: ALICE });
    expect(left.ok).toBe(true);
    expect(await t.fedgate.store.rooms.getJoinedServers(roomId)).not.toContain('fg.test');
  });
  afterEach(() => t.network.close());

  async function leaveThroughUs(localpart: string) {
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId, userId: t.evil.user(localpart), membership: 'leave', origin: 'evil.test' });
    if (!made.ok) return { made, sent: undefined };
    const leave = t.evil.sign({ ...(made.event as Record<string, unknown>) } as never, made.roomVersion);
    const sent = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: leave.eventId, membership: 'leave', origin: 'evil.test', event: leave.pdu as never });
    return { made, sent, leave };
  }

  it('a remote member can still leave through us: the leave is accepted into the room and goes out to the servers in it', async () => {
    const { made, sent, leave } = await leaveThroughUs('mallory');
    expect(made).toMatchObject({ ok: true, roomVersion: '10' });
    expect(sent).toMatchObject({ ok: true });
    expect(await t.fedgate.store.events.get(leave!.eventId)).toMatchObject({ status: 'accepted' });
    const logged = t.fedgate.published.filter((e) => e.eventId === leave!.eventId);
    expect(logged).toMatchObject([{ local: true, outcome: 'accepted', joinedServers: ['other.test'] }]);
  });

  it('make_leave for a user who is not in the room: 403 M_FORBIDDEN, as the spec says', async () => {
    const { made } = await leaveThroughUs('stranger');
    expect(made).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
  });

  it('send_leave of a user who is not in the room: 403 M_FORBIDDEN, and nothing goes out', async () => {
    const leave = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.member', sender: t.evil.user('stranger'), state_key: t.evil.user('stranger'), content: { membership: 'leave' } });
    const sent = await t.fedgate.resolver.handshakes.sendMembership({ roomId, eventId: leave.eventId, membership: 'leave', origin: 'evil.test', event: leave.pdu as never });
    expect(sent).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect(t.fedgate.published.filter((e) => e.eventId === leave.eventId && e.outcome === 'accepted')).toEqual([]);
  });

  it('make_leave and send_leave for a room not known here: 404 M_NOT_FOUND', async () => {
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId: '!unknown:fg.test', userId: t.evil.user('mallory'), membership: 'leave', origin: 'evil.test' });
    expect(made).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND', status: 404 });
    const leave = t.evil.sign({ room_id: '!unknown:fg.test', type: 'm.room.member', sender: t.evil.user('mallory'), state_key: t.evil.user('mallory'), content: { membership: 'leave' } }, '10');
    const sent = await t.fedgate.resolver.handshakes.sendMembership({ roomId: '!unknown:fg.test', eventId: leave.eventId, membership: 'leave', origin: 'evil.test', event: leave.pdu as never });
    expect(sent).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND', status: 404 });
  });
});
