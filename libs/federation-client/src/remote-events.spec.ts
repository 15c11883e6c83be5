import { computeEventId, redactEvent, roomVersionRules, signEvent, SigningKey, type VerifyKey } from '@fedgate/protocol';
import type { KeyRing, ServerKeyRequest } from './key-ring';
import { partitionRemoteEvents, verifyRemoteEvents, wireForm } from './remote-events';

const ROOM = '!room:remote.test';
const remoteKey = new SigningKey('r1', Buffer.alloc(32, 1));
const otherKey = new SigningKey('o1', Buffer.alloc(32, 2));

/** A key ring that knows fixed keys and records what it was asked for. */
function fakeKeyRing(keys: Record<string, VerifyKey[]>): KeyRing & { requests: ServerKeyRequest[][] } {
  const requests: ServerKeyRequest[][] = [];
  return {
    requests,
    async prepare(batch) {
      requests.push(batch);
      return (server, keyId) => keys[server]?.find((k) => k.keyId === keyId);
    },
  };
}

function event(roomVersion: string, overrides: Record<string, unknown> = {}, key = remoteKey, server = 'remote.test') {
  const draft: Record<string, unknown> = {
    room_id: ROOM,
    sender: `@alice:${server}`,
    origin_server_ts: 1_000,
    type: 'm.room.message',
    content: { body: 'hello' },
    prev_events: [],
    auth_events: [],
    depth: 3,
    ...(roomVersion === '1' ? { event_id: `$${Math.random().toString(36).slice(2)}:${server}` } : {}),
    ...overrides,
  };
  return signEvent(draft, roomVersion, server, key) as Record<string, unknown>;
}

const ring = () => fakeKeyRing({ 'remote.test': [remoteKey.verifyKey()], 'other.test': [otherKey.verifyKey()] });

describe('verifyRemoteEvents', () => {
  it('accepts signed events in their wire form, one result per PDU in order, one key ring call', async () => {
    const keyRing = ring();
    const a = { ...event('10'), unsigned: { age: 5 } };
    const b = event('10', { content: { body: 'two' } });
    const results = await verifyRemoteEvents(keyRing, [a, b], { roomVersion: '10', roomId: ROOM });
    expect(results).toEqual([
      { ok: true, eventId: computeEventId(a, '10'), pdu: wireForm(a, '10'), redacted: false },
      { ok: true, eventId: computeEventId(b, '10'), pdu: b, redacted: false },
    ]);
    expect(results[0]!.ok && results[0]!.pdu.unsigned).toBeUndefined();
    expect(keyRing.requests).toHaveLength(1);
  });

  it('refuses what fails validation with the validation errcode, and non-objects', async () => {
    const tooLarge = event('10', { content: { body: 'x'.repeat(70_000) } });
    const noSender = { ...event('10'), sender: undefined };
    const results = await verifyRemoteEvents(ring(), ['nope', tooLarge, noSender], { roomVersion: '10' });
    expect(results.map((r) => !r.ok && [r.problem, r.errcode, r.eventId])).toEqual([
      ['invalid', 'M_BAD_JSON', undefined],
      ['invalid', 'M_TOO_LARGE', undefined],
      ['invalid', 'M_BAD_JSON', undefined],
    ]);
    expect(results[1]).toMatchObject({ reason: expect.stringContaining('invalid event: event: is') });
  });

  it('issue 16 (complement TestOutboundFederationIgnoresMissingEventWithBadJSONForRoomVersion6): a v10 event with a float is refused and named by its ID', async () => {
    const withFloat = signEvent({ ...event('10'), content: { body: 'bad', bad_val: 1.1 } }, { ...roomVersionRules('10'), strictCanonicalJson: false }, 'remote.test', remoteKey);
    const [result] = await verifyRemoteEvents(ring(), [withFloat], { roomVersion: '10', roomId: ROOM });
    expect(result).toEqual({ ok: false, eventId: computeEventId(withFloat, '10'), problem: 'invalid', errcode: 'M_BAD_JSON', reason: expect.stringContaining('content.bad_val') });
  });

  it('does not name an event refused for its numbers that is malformed besides, nor one whose numbers survive redaction', async () => {
    const lenient = { ...roomVersionRules('10'), strictCanonicalJson: false };
    const floatNoSender = { ...signEvent({ ...event('10'), content: { n: 0.5 } }, lenient, 'remote.test', remoteKey), sender: undefined };
    const floatKept = signEvent({ ...event('10'), type: 'm.room.power_levels', state_key: '', content: { users_default: 0.5 } }, lenient, 'remote.test', remoteKey);
    const results = await verifyRemoteEvents(ring(), [floatNoSender, floatKept], { roomVersion: '10', roomId: ROOM });
    expect(results.map((r) => !r.ok && [r.errcode, r.eventId])).toEqual([
      ['M_BAD_JSON', undefined],
      ['M_BAD_JSON', undefined],
    ]);
  });

  it('counts unsigned toward the size limit: the event is validated as received', async () => {
    const padded = { ...event('10'), unsigned: { filler: 'x'.repeat(70_000) } };
    const [result] = await verifyRemoteEvents(ring(), [padded], { roomVersion: '10' });
    expect(result).toMatchObject({ ok: false, errcode: 'M_TOO_LARGE' });
  });

  it('refuses events not asked for and events of another room (a v12 create event has no room_id to check)', async () => {
    const wanted = event('10');
    const unwanted = event('10', { content: { body: 'unwanted' } });
    const elsewhere = event('10', { room_id: '!elsewhere:remote.test' });
    const expectedIds = new Set([computeEventId(wanted, '10'), computeEventId(elsewhere, '10')]);
    const results = await verifyRemoteEvents(ring(), [wanted, unwanted, elsewhere], { roomVersion: '10', roomId: ROOM, expectedIds });
    expect(results[0]).toMatchObject({ ok: true });
    expect(results[1]).toMatchObject({ ok: false, problem: 'invalid', eventId: computeEventId(unwanted, '10'), reason: expect.stringContaining('was not asked for') });
    expect(results[2]).toMatchObject({ ok: false, problem: 'invalid', reason: expect.stringContaining('is in room !elsewhere:remote.test') });

    const { room_id: _r, ...create } = event('12', { type: 'm.room.create', state_key: '', content: { room_version: '12' } });
    const signedCreate = signEvent(create, '12', 'remote.test', remoteKey) as Record<string, unknown>;
    expect((await verifyRemoteEvents(ring(), [signedCreate], { roomVersion: '12', roomId: ROOM }))[0]).toMatchObject({ ok: true });
  });

  it('refuses a missing or bad signature, and requires extra signers when asked', async () => {
    const forged = event('10', {}, otherKey);
    const tampered = { ...event('10'), depth: 4 };
    const plain = event('10');
    const results = await verifyRemoteEvents(ring(), [forged, tampered, plain], { roomVersion: '10', extraSigners: ['other.test'] });
    for (const r of results) expect(r).toMatchObject({ ok: false, problem: 'signature', errcode: 'M_FORBIDDEN', reason: expect.stringMatching(/^bad signature: /) });

    const countersigned = signEvent(plain, '10', 'other.test', otherKey) as Record<string, unknown>;
    expect((await verifyRemoteEvents(ring(), [countersigned], { roomVersion: '10', extraSigners: ['other.test'] }))[0]).toMatchObject({ ok: true });
  });

  it('keeps an event whose content hash does not match, redacted', async () => {
    const original = event('10');
    const edited = { ...original, content: { body: 'edited' } };
    const [result] = await verifyRemoteEvents(ring(), [edited], { roomVersion: '10' });
    expect(result).toEqual({ ok: true, eventId: computeEventId(original, '10'), pdu: redactEvent(edited, '10'), redacted: true });
  });

  it('asks for keys valid at origin_server_ts where the room version enforces key validity (the latest per key)', async () => {
    const keyRing = ring();
    const early = event('10', { origin_server_ts: 1_000 });
    const late = event('10', { origin_server_ts: 5_000 });
    await verifyRemoteEvents(keyRing, [late, early], { roomVersion: '10' });
    expect(keyRing.requests).toEqual([[{ serverName: 'remote.test', keyIds: [remoteKey.keyId], minimumValidUntilTs: 5_000 }]]);

    const old = fakeKeyRing({});
    await verifyRemoteEvents(old, [event('4', { origin_server_ts: 5_000 })], { roomVersion: '4' });
    expect(old.requests).toEqual([[{ serverName: 'remote.test', keyIds: [remoteKey.keyId], minimumValidUntilTs: 0 }]]);
  });

  it('refuses an event signed with a key that had expired when it was sent', async () => {
    const keyRing = fakeKeyRing({ 'remote.test': [remoteKey.verifyKey({ expiredTs: 2_000 })] });
    const results = await verifyRemoteEvents(keyRing, [event('10', { origin_server_ts: 1_000 }), event('10', { origin_server_ts: 3_000 })], { roomVersion: '10' });
    expect(results.map((r) => r.ok)).toEqual([true, false]);
    const lenient = await verifyRemoteEvents(keyRing, [event('4', { origin_server_ts: 3_000 })], { roomVersion: '4' });
    expect(lenient[0]).toMatchObject({ ok: true });
  });

  it('checks the event_id of room version 1 events and the event ID server’s signature', async () => {
    const v1 = event('1');
    expect((await verifyRemoteEvents(ring(), [v1], { roomVersion: '1' }))[0]).toMatchObject({ ok: true, eventId: v1.event_id, pdu: { event_id: v1.event_id } });
    const foreignId = event('1', { event_id: '$x:other.test' });
    expect((await verifyRemoteEvents(ring(), [foreignId], { roomVersion: '1' }))[0]).toMatchObject({ ok: false, problem: 'signature' });
  });

  it('does not call the key ring when nothing passed validation', async () => {
    const keyRing = ring();
    expect(await verifyRemoteEvents(keyRing, [null], { roomVersion: '10' })).toHaveLength(1);
    expect(keyRing.requests).toHaveLength(0);
  });
});

/** Counts how often a member object of a PDU is walked (its keys listed): once per serialisation of it. */
function walkCounted<T extends object>(value: T): { value: T; walks: () => number } {
  let walks = 0;
  const value_ = new Proxy(value, {
    ownKeys(target) {
      walks++;
      return Reflect.ownKeys(target);
    },
  });
  return { value: value_, walks: () => walks };
}

describe('issue 19 (canonical serialisations per PDU)', () => {
  it('verifying a PDU serialises its members once: the size limit, event ID, signature check and content hash share one serialisation (before: content twice, hashes twice in v1 and three times from v3 on)', async () => {
    for (const roomVersion of ['1', '3', '10', '12']) {
      const roomId = roomVersion === '12' ? `!${'A'.repeat(43)}` : ROOM;
      const signed: Record<string, unknown> = { ...event(roomVersion, { room_id: roomId }), unsigned: { age: 1 } };
      const content = walkCounted(signed.content as object);
      const hashes = walkCounted(signed.hashes as object);
      const pdu = { ...signed, content: content.value, hashes: hashes.value };
      const [result] = await verifyRemoteEvents(ring(), [pdu], { roomVersion, roomId });
      expect({ roomVersion, result }).toMatchObject({ roomVersion, result: { ok: true, eventId: computeEventId(signed, roomVersion), redacted: false } });
      expect({ roomVersion, content: content.walks(), hashes: hashes.walks() }).toEqual({ roomVersion, content: 1, hashes: 1 });
    }
  });

  it('a PDU whose redaction keeps content (a v11+ create event keeps all of it) still verifies, and a bad content hash is still seen', async () => {
    const create = event('12', { type: 'm.room.create', state_key: '', room_id: undefined, content: { room_version: '12', extra: [1, 'two'] } });
    delete create.room_id;
    const [ok] = await verifyRemoteEvents(ring(), [create], { roomVersion: '12' });
    expect(ok).toMatchObject({ ok: true, eventId: computeEventId(create, '12'), redacted: false });
    const tampered = { ...create, content: { ...(create.content as object), extra: [1, 'three'] } };
    const [changed] = await verifyRemoteEvents(ring(), [tampered], { roomVersion: '12' });
    // create keeps all of its content under redaction, so the signature no longer verifies.
    expect(changed).toMatchObject({ ok: false, problem: 'signature' });
    const message = event('10');
    const [kept] = await verifyRemoteEvents(ring(), [{ ...message, content: { body: 'changed' } }], { roomVersion: '10' });
    expect(kept).toMatchObject({ ok: true, eventId: computeEventId(message, '10'), redacted: true, pdu: { content: {} } });
  });
});

describe('partitionRemoteEvents', () => {
  it('splits results into valid and refused, keeping order', async () => {
    const a = event('10');
    const b = event('10', { content: { body: 'b' } });
    const { valid, refused } = partitionRemoteEvents(await verifyRemoteEvents(ring(), [a, 'bad', b], { roomVersion: '10' }));
    expect(valid.map((v) => v.eventId)).toEqual([computeEventId(a, '10'), computeEventId(b, '10')]);
    expect(refused).toHaveLength(1);
  });
});

describe('defect 1: restricted joins are verified with the authoriser server signature', () => {
  const join = (extra: Record<string, unknown> = {}) =>
    event('10', { type: 'm.room.member', state_key: '@alice:remote.test', content: { membership: 'join', join_authorised_via_users_server: '@bob:other.test' }, ...extra });

  it('refuses a join whose authoriser server did not sign', async () => {
    const [result] = await verifyRemoteEvents(ring(), [join()], { roomVersion: '10', roomId: ROOM });
    expect(result).toMatchObject({ ok: false, problem: 'signature' });
  });

  it('refuses a forged authoriser signature (present but not made with its key)', async () => {
    const forged = join();
    const sigs = forged.signatures as Record<string, Record<string, string>>;
    sigs['other.test'] = { 'ed25519:o1': sigs['remote.test']['ed25519:r1'] };
    const [result] = await verifyRemoteEvents(ring(), [forged], { roomVersion: '10', roomId: ROOM });
    expect(result).toMatchObject({ ok: false, problem: 'signature' });
  });

  it('accepts the join countersigned by the authoriser server', async () => {
    const signed = signEvent(join(), '10', 'other.test', otherKey) as Record<string, unknown>;
    const [result] = await verifyRemoteEvents(ring(), [signed], { roomVersion: '10', roomId: ROOM });
    expect(result).toMatchObject({ ok: true });
  });

  it('refuses an authoriser signature made with a key that had expired at the join origin_server_ts', async () => {
    const signed = signEvent(join(), '10', 'other.test', otherKey) as Record<string, unknown>;
    const expired = fakeKeyRing({ 'remote.test': [remoteKey.verifyKey()], 'other.test': [otherKey.verifyKey({ expiredTs: 500 })] });
    const [result] = await verifyRemoteEvents(expired, [signed], { roomVersion: '10', roomId: ROOM });
    expect(result).toMatchObject({ ok: false, problem: 'signature' });
  });

  it('send_join: the countersigner (ourselves) is not required yet, everyone else still is', async () => {
    const [result] = await verifyRemoteEvents(ring(), [join()], { roomVersion: '10', roomId: ROOM, countersignedBy: 'other.test' });
    expect(result).toMatchObject({ ok: true });
  });
});
