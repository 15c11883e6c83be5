// The malicious homeserver against a whole embedded gateway over loopback TLS: issue 10's attacks over the wire
// (events of another room as prev_events, a forged restricted-join authoriser, make_join for a room we left).
import { stateMapKey } from '@fedgate/room-state';
import { useWireArena, eventually } from '@fedgate/testing';

describe('a malicious homeserver over the wire (embedded gateway)', () => {
  const arena = useWireArena('adv');

  const createRoom = async (initialState: Array<{ type: string; state_key: string; content: Record<string, unknown> }> = []) =>
    (await arena.bridge.asUser(arena.alice).createRoom({ preset: 'public_chat' as never, room_version: '10', initial_state: initialState } as never)).room_id;

  it('defect 2: a PDU whose prev_events name an event of another room is stored rejected; the room stays usable', async () => {
    const roomA = await createRoom();
    const roomB = await createRoom();
    const inA = await arena.evil.joinRoom(arena.fedgate.serverName, roomA);
    const inB = await arena.evil.joinRoom(arena.fedgate.serverName, roomB);
    const mallory = arena.evil.evil.user('mallory');
    const attack = arena.evil.evil.sign(
      {
        room_id: roomA, sender: mallory, type: 'm.room.message', content: { msgtype: 'm.text', body: 'built on room B' },
        prev_events: [inB.join.eventId],
        auth_events: [inA.state.get(stateMapKey('m.room.create', ''))!, inA.state.get(stateMapKey('m.room.power_levels', ''))!, inA.join.eventId],
        depth: 20,
      },
      inA.roomVersion,
    );
    const sent = await arena.evil.sendPdus(arena.fedgate.serverName, [attack]);
    expect(sent.status).toBe(200);
    const record = await eventually(() => arena.store.events.get(attack.eventId), (r) => r !== undefined);
    expect(record).toMatchObject({ status: 'rejected', reason: expect.stringContaining('another room') });
    await expect(arena.bridge.asUser(arena.alice).sendMessage(roomA, { msgtype: 'm.text', body: 'still here' } as never)).resolves.toBeDefined();
  }, 60_000);

  it('defect 1: a join with a forged authoriser signature is refused by ingress, with the reason in the answer', async () => {
    const allowed = await createRoom();
    const restricted = await createRoom([{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: allowed }] } }]);
    await arena.evil.joinRoom(arena.fedgate.serverName, allowed, 'scout');
    // Build a join on what make_join for an allowed user would give, but for someone the rules do not allow.
    const template = await arena.evil.request(arena.fedgate.serverName, 'GET', `/_matrix/federation/v1/make_join/${encodeURIComponent(restricted)}/${encodeURIComponent(arena.evil.evil.user('scout'))}?ver=10`);
    expect(template.status).toBe(200);
    const intruder = arena.evil.evil.user('intruder');
    const join = arena.evil.evil.sign({ ...template.json.event, sender: intruder, state_key: intruder, origin_server_ts: Date.now() }, '10');
    const sigs = join.pdu.signatures as Record<string, Record<string, string>>;
    // A "signature" under the fedgate's real key ID that the arena.fedgate never made.
    const keyDoc = await arena.evil.request(arena.fedgate.serverName, 'GET', '/_matrix/key/v2/server');
    const fedgateKeyId = Object.keys(keyDoc.json.verify_keys)[0]!;
    const forged = { ...join.pdu, signatures: { ...sigs, [arena.fedgate.serverName]: { [fedgateKeyId]: sigs[arena.evil.name][arena.evil.evil.key.keyId] } } };
    const sent = await arena.evil.request(arena.fedgate.serverName, 'PUT', `/_matrix/federation/v1/send/forged-authoriser`, { origin: arena.evil.name, origin_server_ts: Date.now(), pdus: [forged] });
    expect(sent.status).toBe(200);
    expect(Object.values(sent.json.pdus ?? {})).toEqual([{ error: expect.stringMatching(/signature|key/i) }]);
    // And send_join without make_join for that user: never countersigned.
    const direct = await arena.evil.request(arena.fedgate.serverName, 'PUT', `/_matrix/federation/v2/send_join/${encodeURIComponent(restricted)}/${encodeURIComponent(join.eventId)}`, join.pdu);
    expect(direct.status).toBe(403);
  }, 60_000);

  it('defect 8: make_join for a room every arena.fedgate user has left → 404 M_NOT_FOUND', async () => {
    const roomId = await createRoom();
    await arena.evil.joinRoom(arena.fedgate.serverName, roomId);
    await arena.bridge.asUser(arena.alice).leave(roomId);
    const made = await eventually(
      () => arena.evil.request(arena.fedgate.serverName, 'GET', `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(arena.evil.evil.user('late'))}?ver=10`),
      (r) => r.status !== 200,
    );
    expect(made).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });
  }, 60_000);

  it('the arena.fedgate sends the malicious server what it sends everyone in the room (transactions are recorded)', async () => {
    expect(arena.evil.transactions.length).toBeGreaterThan(0);
  });
});
