// Issue 10 defect 1: restricted joins. The authoriser's signature is verified for real on receipt, and send_join
// re-checks the allow rules before we countersign (a remote may skip make_join): we are no signing oracle.
import { signEvent } from '@fedgate/protocol';
import { stateMapKey } from '@fedgate/room-state';
import { arena, ALICE, currentState, type Arena } from './setup';

describe('adversarial: restricted joins', () => {
  let t: Arena;
  let allowed: string;
  let restricted: string;
  beforeEach(async () => {
    t = await arena();
    allowed = await t.fedgate.createRoom(ALICE, '10');
    restricted = await t.fedgate.createRoom(ALICE, '10', [
      { type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: allowed }] } },
    ]);
  });
  afterEach(() => t.network.close());

  /** A join naming `via` as authoriser, built without make_join. */
  const forgedJoin = (via: string, localpart = 'mallory') =>
    t.evil.eventIn(t.fedgate, restricted, { type: 'm.room.member', sender: t.evil.user(localpart), state_key: t.evil.user(localpart), content: { membership: 'join', join_authorised_via_users_server: via } });

  it('defect 1: send_join without make_join, joiner in no allowed room → 403, never countersigned or stored', async () => {
    const join = await forgedJoin(ALICE);
    const reply = await t.evil.sendJoin(t.fedgate, restricted, join, '10');
    expect(reply).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
    expect(await t.fedgate.store.events.get(join.eventId)).toBeUndefined();
    expect((await currentState(t.fedgate, restricted)).get(stateMapKey('m.room.member', t.evil.user('mallory')))).toBeUndefined();
  });

  it('defect 1: send_join naming an authoriser of another server → M_UNABLE_TO_GRANT_JOIN, not signed', async () => {
    const join = await forgedJoin('@someone:other.test');
    const reply = await t.evil.sendJoin(t.fedgate, restricted, join, '10');
    expect(reply).toMatchObject({ ok: false });
    expect(await t.fedgate.store.events.get(join.eventId)).toBeUndefined();
  });

  it('defect 1: a join over /send with a forged authoriser signature is refused on receipt', async () => {
    const join = await forgedJoin(ALICE);
    // A signature "from" fg.test that fg.test never made: evil's own signature bytes under fg.test's key ID.
    const sigs = join.pdu.signatures as Record<string, Record<string, string>>;
    const forged = { ...join, pdu: { ...join.pdu, signatures: { ...sigs, 'fg.test': { [t.fedgate.key.keyId]: sigs['evil.test'][t.evil.key.keyId] } } } };
    const [delivery] = await t.evil.deliver(t.fedgate, [forged as never]);
    expect(delivery.refused).toMatch(/signature/);
    expect(await t.fedgate.store.events.get(join.eventId)).toBeUndefined();
  });

  it('defect 1: a join over /send signed by the authoriser server with a key it does not have is refused', async () => {
    const join = await forgedJoin(ALICE);
    const { generateSigningKey } = await import('@fedgate/protocol');
    const stolen = { ...join, pdu: signEvent(join.pdu, '10', 'fg.test', generateSigningKey(t.fedgate.key.keyId.slice('ed25519:'.length))) };
    const [delivery] = await t.evil.deliver(t.fedgate, [stolen as never]);
    expect(delivery.refused).toMatch(/signature/);
  });

  it('an honest restricted join (joiner in an allowed room) is countersigned and accepted', async () => {
    await t.evil.joinRoom(t.fedgate, allowed);
    const join = await t.evil.joinRoom(t.fedgate, restricted);
    const stored = (await t.fedgate.store.events.get(join.eventId))!;
    expect(stored.status).toBe('accepted');
    expect(stored.pdu.content.join_authorised_via_users_server).toBe(ALICE);
    expect(stored.pdu.signatures['fg.test']).toBeDefined();
  });

  it('make_join for a joiner in no allowed room → 403 M_FORBIDDEN (spec: fails all conditions)', async () => {
    const made = await t.fedgate.resolver.handshakes.makeMembership({ roomId: restricted, userId: t.evil.user('mallory'), membership: 'join', origin: 'evil.test', supportedVersions: ['10'] });
    expect(made).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });
});
