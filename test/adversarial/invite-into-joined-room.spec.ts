// A remote server invites one of our users into a room this server is joined to, and withholds the /send of the
// invite (Synapse sends it only later): the countersigned invite enters the room through the inbound path at
// once, so a bridge that joins as soon as it hears of the invite is let in. A lying inviter gets nothing into the
// room that /send would not have let in.
import { verifyRemoteEvents } from '@fedgate/federation-client';
import type { SignedEvent } from '@fedgate/testing';
import { stateMapKey } from '@fedgate/room-state';
import { arenaWithEvilJoined, ALICE, currentState, type Arena } from './setup';

const BOB = '@bob:fg.test';

describe('invite into a room we are joined to, its /send withheld', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    ({ t, roomId } = await arenaWithEvilJoined());
    expect((await t.fedgate.send(roomId, ALICE, 'm.room.join_rules', { join_rule: 'invite' }, { stateKey: '' })).ok).toBe(true);
  });
  afterEach(() => t.network.close());

  const inviteFields = (extra: Record<string, unknown> = {}) => ({ type: 'm.room.member', state_key: BOB, sender: t.evil.user('mallory'), content: { membership: 'invite' }, ...extra });

  /** PUT /v2/invite as ingress hands it over: verified (shape, signatures, hash, event ID), then the command. */
  async function invite(e: SignedEvent, roomVersion = '10') {
    const [checked] = await verifyRemoteEvents(t.network.keyRing(), [e.pdu], { roomVersion, roomId });
    if (!checked.ok) throw new Error(`ingress would refuse it: ${checked.reason}`);
    return t.fedgate.resolver.handshakes.receiveInvite({ roomId, eventId: e.eventId, roomVersion, origin: 'evil.test', event: checked.pdu as never, inviteRoomState: [] });
  }
  const bobJoins = () => t.fedgate.send(roomId, BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB });
  const logged = (eventId: string) => t.fedgate.published.filter((e) => e.eventId === eventId);

  it('invite race: the invited user joins at once, before the inviter /sends the invite', async () => {
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields());
    const reply = await invite(e);
    expect(reply).toMatchObject({ ok: true });
    expect(await t.fedgate.store.events.get(e.eventId)).toMatchObject({ status: 'accepted', outlier: false });
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.member', BOB))).toBe(e.eventId);
    // The bridge hears of it once, from the room log, with the room state the inviter gave.
    expect(logged(e.eventId)).toHaveLength(1);
    expect(logged(e.eventId)[0]).toMatchObject({ outcome: 'accepted', stateDelta: { [stateMapKey('m.room.member', BOB)]: e.eventId } });
    expect((logged(e.eventId)[0].event as { unsigned?: Record<string, unknown> }).unsigned).toHaveProperty('invite_room_state');

    const join = await bobJoins();
    expect(join).toMatchObject({ ok: true });

    // The inviter's later /send of the same event changes nothing.
    const [later] = await t.evil.deliver(t.fedgate, [e]);
    expect(later).toMatchObject({ status: 'accepted' });
    expect(logged(e.eventId)).toHaveLength(1);
    expect((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.member', BOB))).toBe((join as { eventId: string }).eventId);
  });

  it('invite race: prev_events the inviter has not sent yet are fetched from it, then the invited user joins', async () => {
    t.evil.servesMissingEvents = true;
    const withheld = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: t.evil.user('mallory'), content: { body: 'not sent yet' } });
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields({ prev_events: [withheld.eventId], depth: Number(withheld.pdu.depth) + 1 }));
    expect(await invite(e)).toMatchObject({ ok: true });
    expect(await t.fedgate.store.events.get(withheld.eventId)).toMatchObject({ status: 'accepted', outlier: false });
    expect(await bobJoins()).toMatchObject({ ok: true });
  });

  it('invite race, lying inviter: an invite whose prev_events are of another room is refused and stays out of the room', async () => {
    const other = await t.fedgate.createRoom(ALICE, '10');
    const foreign = (await t.fedgate.store.rooms.getForwardExtremities(other))[0];
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields({ prev_events: [foreign] }));
    const reply = await invite(e);
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
    expect((reply as { error: string }).error).toMatch(/prev_events of another room/);
    expect(await t.fedgate.store.events.get(e.eventId)).toMatchObject({ status: 'rejected' });
    expect((await currentState(t.fedgate, roomId)).has(stateMapKey('m.room.member', BOB))).toBe(false);
    expect(logged(e.eventId).every((entry) => entry.outcome === 'rejected')).toBe(true);
    expect(await bobJoins()).toMatchObject({ ok: false, status: 403 });
  });

  it('invite race, lying inviter: an invite not allowed by the state at its prev_events (its sender not joined there) is refused', async () => {
    // Built on the room as it was before mallory joined: allowed by current state, not by the state before it.
    const beforeMallory = (await t.fedgate.store.events.getMany([...(await currentState(t.fedgate, roomId)).values()])).get((await currentState(t.fedgate, roomId)).get(stateMapKey('m.room.power_levels', ''))!)!;
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields({ prev_events: [beforeMallory.eventId], depth: beforeMallory.depth + 1 }));
    const reply = await invite(e);
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
    expect(await t.fedgate.store.events.get(e.eventId)).toMatchObject({ status: 'rejected' });
    expect((await currentState(t.fedgate, roomId)).has(stateMapKey('m.room.member', BOB))).toBe(false);
    expect(await bobJoins()).toMatchObject({ ok: false, status: 403 });
  });

  it('invite race, lying inviter: an invite claiming another room version than the room has is refused', async () => {
    const honest = await t.evil.eventIn(t.fedgate, roomId, inviteFields());
    const { signatures: _s, hashes: _h, ...fields } = honest.pdu as Record<string, unknown>;
    const e = t.evil.sign(fields as never, '11');
    const reply = await invite(e, '11');
    expect(reply).toMatchObject({ ok: false, errcode: 'M_BAD_JSON', status: 400 });
    expect(await t.fedgate.store.events.get(e.eventId)).toBeUndefined();
  });

  it('invite race: when the inviter does not let its prev_events be fetched, the invite is still answered and the later /send brings it', async () => {
    const withheld = await t.evil.eventIn(t.fedgate, roomId, { type: 'm.room.message', sender: t.evil.user('mallory'), content: { body: 'not sent yet' } });
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields({ prev_events: [withheld.eventId], depth: Number(withheld.pdu.depth) + 1 }));
    t.evil.lie('get_missing_events', () => ({ status: 503, body: { errcode: 'M_UNKNOWN', error: 'busy' } }));
    const publish = jest.spyOn(t.fedgate.bus, 'publish');
    expect(await invite(e)).toMatchObject({ ok: true });
    expect(publish.mock.calls.some(([subject, data]) => String(subject).includes('.inbound.pdu.') && (data as { eventId?: string }).eventId === e.eventId)).toBe(true);
    // Kept as an outlier and told to the bridge, as for a room we are not in; handed to the inbound path.
    expect(await t.fedgate.store.events.get(e.eventId)).toMatchObject({ status: 'accepted', outlier: true });
    expect(logged(e.eventId)).toHaveLength(1);
    t.evil.tellTheTruth();
    t.evil.servesMissingEvents = true;
    const [later] = await t.evil.deliver(t.fedgate, [e]);
    expect(later).toMatchObject({ status: 'accepted' });
    expect(await bobJoins()).toMatchObject({ ok: true });
  });

  it('invite race, crash between countersigning and the commit: nothing is half-kept, and the later /send brings the invite', async () => {
    const e = await t.evil.eventIn(t.fedgate, roomId, inviteFields());
    // The commit's store writes are one unit (store.commits.write): the process dies before it is made.
    const write = t.fedgate.store.commits.write.bind(t.fedgate.store.commits);
    const crash = jest.spyOn(t.fedgate.store.commits, 'write').mockImplementationOnce(async () => {
      throw new Error('process died');
    });
    await expect(invite(e)).rejects.toThrow(/process died/);
    crash.mockImplementation(write);
    expect((await currentState(t.fedgate, roomId)).has(stateMapKey('m.room.member', BOB))).toBe(false);
    const [later] = await t.evil.deliver(t.fedgate, [e]);
    expect(later).toMatchObject({ status: 'accepted' });
    expect(await bobJoins()).toMatchObject({ ok: true });
  });
});
