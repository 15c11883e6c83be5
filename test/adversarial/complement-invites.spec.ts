// Issue 16 defect 4: invites into rooms this server is not in — the inviter rescinding the invite by /send, and
// the invitee rejecting it when the inviting server cannot serve make_leave.
import type { InboundPdu } from '@fedgate/bus';
import type { SignedEvent } from '@fedgate/testing';
import { arena, ALICE, type Arena } from './setup';

describe('complement: invites to rooms we are not in', () => {
  let t: Arena;
  let room: ReturnType<Arena['evil']['createRoom']>;
  let invite: SignedEvent;
  beforeEach(async () => {
    t = await arena();
    room = t.evil.createRoom('10');
    invite = t.evil.append(room, { type: 'm.room.member', state_key: ALICE, sender: t.evil.user('boss'), content: { membership: 'invite' } });
    const reply = await t.fedgate.resolver.handshakes.receiveInvite({ roomId: room.roomId, eventId: invite.eventId, roomVersion: '10', origin: 'evil.test', event: invite.pdu as never, inviteRoomState: [] });
    expect(reply.ok).toBe(true);
  });
  afterEach(() => t.network.close());

  const inbound = (e: SignedEvent, origin = 'evil.test'): InboundPdu => ({ eventId: e.eventId, roomId: room.roomId, roomVersion: '10', origin, txnId: 't', receivedAt: Date.now(), redacted: false, pdu: e.pdu as never });
  const loggedMemberships = () => t.fedgate.published.filter((e) => e.roomId === room.roomId).map((e) => (e.event as { content: { membership?: string } }).content.membership);

  it('issue 16 defect 4: the inviter rescinding the invite (a leave by /send into a room we are not in) reaches the room log', async () => {
    const rescind = t.evil.append(room, { type: 'm.room.member', state_key: ALICE, sender: t.evil.user('boss'), content: { membership: 'leave' } });
    await t.fedgate.resolver.inbound.handle(inbound(rescind));
    expect(await t.fedgate.store.events.get(rescind.eventId)).toMatchObject({ status: 'accepted', outlier: true });
    expect(loggedMemberships()).toEqual(['invite', 'leave']);
  });

  it('issue 16 defect 4: a leave for an invited user sent by another server, or for a user with no invite, is still refused', async () => {
    const other = t.evil.append(room, { type: 'm.room.member', state_key: ALICE, sender: t.evil.user('boss'), content: { membership: 'leave' } });
    await expect(t.fedgate.resolver.inbound.handle(inbound(other, 'elsewhere.test'))).rejects.toThrow(/not known here/);
    const nobody = t.evil.append(room, { type: 'm.room.member', state_key: '@bob:fg.test', sender: t.evil.user('boss'), content: { membership: 'leave' } });
    await expect(t.fedgate.resolver.inbound.handle(inbound(nobody))).rejects.toThrow(/not known here/);
    const message = t.evil.append(room, { type: 'm.room.message', sender: t.evil.user('boss'), content: { body: 'hi' } });
    await expect(t.fedgate.resolver.inbound.handle(inbound(message))).rejects.toThrow(/not known here/);
    expect(loggedMemberships()).toEqual(['invite']);
  });

  it('issue 16 defect 4: rejecting an invite when the inviting server cannot serve make_leave falls back to a local leave', async () => {
    // The malicious server answers make_leave with 404 M_UNRECOGNIZED: it cannot take the rejection.
    const reply = await t.fedgate.resolver.remoteMembership.onCommand({ roomId: room.roomId, userId: ALICE, membership: 'leave', via: ['evil.test'], content: { reason: 'no thanks' } });
    expect(reply).toMatchObject({ ok: true, roomId: room.roomId });
    const eventId = (reply as { eventId: string }).eventId;
    const record = await t.fedgate.store.events.get(eventId);
    expect(record).toMatchObject({ status: 'accepted', outlier: true, prevEventIds: [invite.eventId], authEventIds: [invite.eventId] });
    expect(record!.pdu).toMatchObject({ sender: ALICE, state_key: ALICE, content: { membership: 'leave', reason: 'no thanks' } });
    expect(loggedMemberships()).toEqual(['invite', 'leave']);
    expect(t.evil.requests.some((r) => r.segments[1] === 'make_leave')).toBe(true);
  });

  it('issue 16 defect 4: with no pending invite there is nothing to fall back to: the remote refusal is answered', async () => {
    const reply = await t.fedgate.resolver.remoteMembership.onCommand({ roomId: room.roomId, userId: '@bob:fg.test', membership: 'leave', via: ['evil.test'] });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_UNRECOGNIZED', status: 404 });
  });

  it('complement TestFederationRoomsInvite "reject invite several times": each new invite is rejected on its own', async () => {
    const leaves: string[] = [];
    for (let round = 0; round < 3; round++) {
      if (round > 0) {
        invite = t.evil.append(room, { type: 'm.room.member', state_key: ALICE, sender: t.evil.user('boss'), content: { membership: 'invite' } });
        await new Promise((resolve) => setTimeout(resolve, 2)); // distinct receivedTs
        expect((await t.fedgate.resolver.handshakes.receiveInvite({ roomId: room.roomId, eventId: invite.eventId, roomVersion: '10', origin: 'evil.test', event: invite.pdu as never, inviteRoomState: [] })).ok).toBe(true);
      }
      const reply = await t.fedgate.resolver.remoteMembership.onCommand({ roomId: room.roomId, userId: ALICE, membership: 'leave', via: ['evil.test'] });
      expect(reply).toMatchObject({ ok: true });
      const leave = (reply as { eventId: string }).eventId;
      expect((await t.fedgate.store.events.get(leave))?.prevEventIds).toEqual([invite.eventId]);
      leaves.push(leave);
    }
    expect(new Set(leaves).size).toBe(3);
    expect(loggedMemberships()).toEqual(['invite', 'leave', 'invite', 'leave', 'invite', 'leave']);
  });
});
