import { generateSigningKey, SigningKey } from './signing-key';
import { parseServerName, parseUserId, parseRoomId, parseEventId, parseRoomAlias, InvalidIdentifierError, isIpv6Address } from './identifiers';
import { byteLimitViolation, validatePdu, PduValidationError, MAX_PDU_BYTES } from './pdu-validation';
import { buildXMatrixHeader, parseXMatrixHeader, verifyXMatrixRequest, XMatrixAuthError } from './x-matrix';
import { buildServerKeyDocument, verifyServerKeyDocument, isKeyValidAt, lookupFromServerKeys, ServerKeyDocumentError, MAX_KEY_VALIDITY_MS } from './server-keys';
import { computeEventId, requiredEventSigners, signEvent } from './event-signing';
import { roomVersionsForEventId } from './room-version-of-event';
import { signJson } from './json-signing';

describe('server names', () => {
  it.each([
    ['matrix.org', 'dns', undefined],
    ['matrix.org:8888', 'dns', 8888],
    ['1.2.3.4', 'ipv4', undefined],
    ['1.2.3.4:1234', 'ipv4', 1234],
    ['[1234:5678::abcd]', 'ipv6', undefined],
    ['[1234:5678::abcd]:5678', 'ipv6', 5678],
    ['[::ffff:1.2.3.4]', 'ipv6', undefined],
    ['localhost', 'dns', undefined],
  ])('accepts %s', (name, hostType, port) => {
    expect(parseServerName(name)).toMatchObject({ hostType, port });
  });

  it.each(['', 'a b', 'matrix.org:', 'matrix.org:99999', 'matrix.org:12a', '1.2.3.256', '[1::2::3]', '[12345::]', '[1:2:3:4:5:6:7:8:9]', '[::1', 'exa_mple.org', 'ünicode.org'])(
    'refuses %j',
    (name) => expect(() => parseServerName(name)).toThrow(InvalidIdentifierError),
  );

  it('knows IPv6 text forms', () => {
    expect(['::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', 'fe80::1:2'].every(isIpv6Address)).toBe(true);
    expect(['1:2:3:4:5:6:7', ':1', '1:', '1:2:3:4:5:6:7:8:1.2.3.4', 'g::1'].some(isIpv6Address)).toBe(false);
  });
});

describe('identifiers', () => {
  it('parses user IDs, with historical localparts only on request', () => {
    expect(parseUserId('@alice_1=+/.-:example.org:8448')).toEqual({ localpart: 'alice_1=+/.-', serverName: 'example.org:8448', historical: false });
    expect(() => parseUserId('@Alice:example.org')).toThrow(expect.objectContaining({ code: 'invalid_user_id' }));
    expect(parseUserId('@Alice!:example.org', { allowHistorical: true }).historical).toBe(true);
    expect(parseUserId('@:example.org', { allowHistorical: true }).localpart).toBe('');
    expect(() => parseUserId('@a\u0000b:example.org', { allowHistorical: true })).toThrow(InvalidIdentifierError);
    expect(() => parseUserId('@a' + 'x'.repeat(250) + ':example.org')).toThrow(/255 bytes/);
    expect(() => parseUserId('@alice:bad host')).toThrow(/server name/);
  });

  it('parses room IDs in both forms, per room version', () => {
    const hash = 'Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ';
    expect(parseRoomId('!abc:example.org')).toEqual({ opaqueId: 'abc', serverName: 'example.org' });
    expect(parseRoomId('!' + hash)).toEqual({ opaqueId: hash });
    const { roomVersionRules } = jest.requireActual('./room-versions');
    expect(() => parseRoomId('!' + hash, roomVersionRules('11'))).toThrow(/need ":server"/);
    expect(() => parseRoomId('!abc:example.org', roomVersionRules('12'))).toThrow(/carry no server/);
    expect(() => parseRoomId('!short')).toThrow(InvalidIdentifierError);
  });

  it('parses event IDs of every format', () => {
    expect(parseEventId('$abc:example.org').serverName).toBe('example.org');
    expect(parseEventId('$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438').serverName).toBeUndefined();
    expect(parseEventId('$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438').serverName).toBeUndefined();
    const { roomVersionRules } = jest.requireActual('./room-versions');
    expect(() => parseEventId('$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438', roomVersionRules('4'))).toThrow(/URL-safe/);
    expect(() => parseEventId('$abc:example.org', roomVersionRules('4'))).toThrow(InvalidIdentifierError);
    expect(() => parseEventId('abc')).toThrow(/"\$"/);
  });

  it('parses room aliases', () => {
    expect(parseRoomAlias('#chat room:example.org')).toEqual({ localpart: 'chat room', serverName: 'example.org' });
    expect(() => parseRoomAlias('#nohost')).toThrow(InvalidIdentifierError);
  });
});

describe('validatePdu', () => {
  const key = generateSigningKey('v');
  const make = (overrides: Record<string, unknown> = {}, version = '10') =>
    signEvent(
      { room_id: '!r:hs.example', sender: '@a:hs.example', origin_server_ts: 1, type: 'm.room.message', content: { body: 'x' }, prev_events: ['$' + 'A'.repeat(43)], auth_events: [], depth: 2, ...overrides },
      version,
      'hs.example',
      key,
    );

  it('accepts a well-formed PDU', () => {
    expect(() => validatePdu(make(), '10')).not.toThrow();
    expect(() => validatePdu(make({ sender: '@Old Style:hs.example' }), '10')).not.toThrow();
    expect(() => validatePdu(make({ event_id: '$e:hs.example', prev_events: [['$p:hs.example', { sha256: 'x' }]] }, '1'), '1')).not.toThrow();
    expect(() => validatePdu(make({ room_id: undefined, type: 'm.room.create', state_key: '', prev_events: [] }, '12'), '12')).not.toThrow();
  });

  it.each([
    [{ type: 'x'.repeat(256) }, 'type', 'field_too_long'],
    [{ sender: 'alice' }, 'sender', 'bad_identifier'],
    [{ room_id: 42 }, 'room_id', 'missing_field'],
    [{ prev_events: Array.from({ length: 21 }, () => '$' + 'A'.repeat(43)) }, 'prev_events', 'too_many_references'],
    [{ auth_events: Array.from({ length: 11 }, () => '$' + 'A'.repeat(43)) }, 'auth_events', 'too_many_references'],
    [{ prev_events: ['$bad id'] }, 'prev_events[0]', 'bad_identifier'],
    [{ depth: -1 }, 'depth', 'bad_field'],
    [{ content: [] }, 'content', 'missing_field'],
    [{ content: { n: 1.5 } }, 'content.n', 'bad_json'],
    [{ content: { big: 'x'.repeat(MAX_PDU_BYTES) } }, 'event', 'too_large'],
  ])('refuses bad PDU %#', (overrides, field, code) => {
    try {
      validatePdu({ ...make(), ...overrides }, '10');
      throw new Error('expected a PduValidationError');
    } catch (e) {
      expect(e).toBeInstanceOf(PduValidationError);
      expect(e).toMatchObject({ field, code });
      expect((e as Error).message).toContain(field);
    }
  });

  describe('issue 16 defect 1: 255 limits are bytes from v11, code points (then stored rejected) before', () => {
    const twoByte = 'é'.repeat(128); // 128 code points, 256 bytes
    it('v11 refuses a state_key or type of 256 bytes', () => {
      expect(() => validatePdu(make({ state_key: twoByte }, '11'), '11')).toThrow(expect.objectContaining({ field: 'state_key', code: 'field_too_long' }));
      expect(() => validatePdu(make({ type: twoByte }, '11'), '11')).toThrow(expect.objectContaining({ field: 'type', code: 'field_too_long' }));
    });
    it.each(['1', '3', '10'])('v%s accepts 256 bytes within 255 code points for validatePdu, and byteLimitViolation names the field', (version) => {
      const v1 = version === '1' ? { event_id: '$e:hs.example', prev_events: [] } : {};
      const pdu = make({ state_key: twoByte, type: 'm.room.topic', ...v1 }, version);
      expect(() => validatePdu(pdu, version)).not.toThrow();
      expect(byteLimitViolation(pdu, version)).toMatch(/^field_too_long: state_key is 256 bytes/);
      const typed = make({ type: 'ü'.repeat(200), ...v1 }, version);
      expect(() => validatePdu(typed, version)).not.toThrow();
      expect(byteLimitViolation(typed, version)).toMatch(/type is 400 bytes/);
    });
    it('before v11 still refuses more than 255 code points, in every limited field', () => {
      expect(() => validatePdu(make({ type: 'é'.repeat(256) }, '10'), '10')).toThrow(expect.objectContaining({ field: 'type', code: 'field_too_long' }));
      expect(() => validatePdu(make({ state_key: 'x'.repeat(256) }, '10'), '10')).toThrow(expect.objectContaining({ field: 'state_key' }));
      expect(() => validatePdu(make({ sender: '@' + 'é'.repeat(250) + ':hs.example' }, '10'), '10')).toThrow(expect.objectContaining({ field: 'sender' }));
    });
    it('a sender or room ID of multi-byte code points is held to code points before v11 and bytes from v11', () => {
      const sender = '@' + 'é'.repeat(200) + ':hs.example'; // historical localpart, 212 code points, 412 bytes
      expect(() => validatePdu(make({ sender }, '10'), '10')).not.toThrow();
      expect(byteLimitViolation(make({ sender }, '10'), '10')).toMatch(/sender/);
      expect(() => validatePdu(make({ sender }, '11'), '11')).toThrow(expect.objectContaining({ field: 'sender' }));
      const roomId = '!' + 'é'.repeat(200) + ':hs.example';
      expect(() => validatePdu(make({ room_id: roomId }, '10'), '10')).not.toThrow();
      expect(() => validatePdu(make({ room_id: roomId }, '11'), '11')).toThrow(expect.objectContaining({ field: 'room_id' }));
    });
    it('byteLimitViolation finds nothing in events within 255 bytes, or in v11+ (refused earlier instead)', () => {
      expect(byteLimitViolation(make({}, '10'), '10')).toBeUndefined();
      expect(byteLimitViolation({ state_key: twoByte }, '11')).toBeUndefined();
    });
  });

  it('answers an oversized event with M_TOO_LARGE', () => {
    expect(() => validatePdu(make({ content: { big: 'x'.repeat(MAX_PDU_BYTES) } }), '10')).toThrow(expect.objectContaining({ errcode: 'M_TOO_LARGE' }));
  });

  it('allows floats in v1–5 rooms and refuses them from v6', () => {
    expect(() => validatePdu(make({ content: { n: 1.5 } }, '5'), '5')).not.toThrow();
    expect(() => validatePdu(make({ content: { n: 1 } }, '6'), '6')).not.toThrow();
  });

  it('refuses a room_id on a v12 create event', () => {
    expect(() => validatePdu(make({ type: 'm.room.create', state_key: '', prev_events: [] }, '12'), '12')).toThrow(expect.objectContaining({ field: 'room_id' }));
  });
});

describe('X-Matrix', () => {
  const key = new SigningKey('k', new Uint8Array(32).fill(3));
  const lookup = (server: string, keyId: string) => (server === 'origin.example' && keyId === key.keyId ? key.verifyKey() : undefined);
  const request = { method: 'PUT', uri: '/_matrix/federation/v1/send/1?x=1', origin: 'origin.example', destination: 'dest.example', content: { pdus: [] } };

  it('builds a header that verifies', () => {
    const authorization = buildXMatrixHeader(request, key);
    expect(authorization).toMatch(/^X-Matrix origin="origin\.example",destination="dest\.example",key="ed25519:k",sig="[A-Za-z0-9+/]{86}"$/);
    expect(verifyXMatrixRequest({ ...request, authorization }, lookup, { serverName: 'dest.example' })).toEqual({ origin: 'origin.example', keyId: 'ed25519:k' });
  });

  it('parses any order, bare tokens with colons, escapes, odd spacing and unknown parameters', () => {
    expect(parseXMatrixHeader('x-matrix   KEY=ed25519:k ,\tsig="a\\"b" , Origin=origin.example:8448,extra="ignored",destination="dest.example"')).toEqual({
      origin: 'origin.example:8448',
      destination: 'dest.example',
      key: 'ed25519:k',
      sig: 'a"b',
    });
  });

  it.each([
    ['Bearer abc', 'scheme'],
    ['X-Matrix key="ed25519:k",sig="x"', 'no origin'],
    ['X-Matrix origin="o.example",key="ed25519:k"', 'no sig'],
    ['X-Matrix origin="o.example,key="ed25519:k",sig="x"', 'expected'],
    ['X-Matrix origin="o.example",origin="p.example",key="ed25519:k",sig="x"', 'twice'],
    ['X-Matrix origin="bad host",key="ed25519:k",sig="x"', 'not a server name'],
  ])('refuses %j (%s)', (header, reason) => {
    expect(() => parseXMatrixHeader(header)).toThrow(XMatrixAuthError);
    expect(() => parseXMatrixHeader(header)).toThrow(reason);
  });

  it('refuses a wrong destination, a tampered request and an unknown key with 401', () => {
    const authorization = buildXMatrixHeader(request, key);
    expect(() => verifyXMatrixRequest({ ...request, authorization }, lookup, { serverName: 'other.example' })).toThrow(expect.objectContaining({ code: 'wrong_destination', errcode: 'M_UNAUTHORIZED' }));
    expect(() => verifyXMatrixRequest({ ...request, uri: '/_matrix/federation/v1/send/2', authorization }, lookup, { serverName: 'dest.example' })).toThrow(expect.objectContaining({ code: 'bad_signature' }));
    expect(() => verifyXMatrixRequest({ ...request, authorization }, () => undefined, { serverName: 'dest.example' })).toThrow(expect.objectContaining({ code: 'unknown_key' }));
    expect(() => verifyXMatrixRequest({ ...request, authorization: undefined }, lookup, { serverName: 'dest.example' })).toThrow(expect.objectContaining({ code: 'missing_header' }));
  });

  it('accepts a header without destination, signed for our name', () => {
    const full = buildXMatrixHeader({ ...request, content: undefined, method: 'GET' }, key);
    const withoutDestination = full.replace(/destination="[^"]*",/, '');
    expect(verifyXMatrixRequest({ method: 'GET', uri: request.uri, authorization: withoutDestination }, lookup, { serverName: 'dest.example' }).origin).toBe('origin.example');
  });
});

describe('server key documents', () => {
  const current = generateSigningKey('new');
  const old = generateSigningKey('old');
  const doc = buildServerKeyDocument({ serverName: 'hs.example', keys: [current], validUntilTs: 2_000, oldVerifyKeys: [{ keyId: old.keyId, key: old.publicKeyBase64, expiredTs: 1_000 }] });

  it('builds, signs and verifies', () => {
    const keys = verifyServerKeyDocument(doc, { serverName: 'hs.example' });
    expect([...keys.verifyKeys.keys()]).toEqual(['ed25519:new']);
    expect(keys.validUntilTs).toBe(2_000);
    expect(isKeyValidAt(keys, 'ed25519:new', 2_000)).toBe(true);
    expect(isKeyValidAt(keys, 'ed25519:new', 2_001)).toBe(false);
    expect(isKeyValidAt(keys, 'ed25519:old', 999)).toBe(true);
    expect(isKeyValidAt(keys, 'ed25519:old', 1_000)).toBe(false);
    expect(lookupFromServerKeys([keys])('hs.example', 'ed25519:old')?.expiredTs).toBe(1_000);
  });

  it('caps validity at seven days after fetching', () => {
    const far = buildServerKeyDocument({ serverName: 'hs.example', keys: [current], validUntilTs: 10 * MAX_KEY_VALIDITY_MS });
    expect(verifyServerKeyDocument(far, { fetchedAtTs: 0 }).validUntilTs).toBe(MAX_KEY_VALIDITY_MS);
  });

  it('refuses tampered, foreign and unsigned documents', () => {
    expect(() => verifyServerKeyDocument({ ...doc, valid_until_ts: 9_999 })).toThrow(expect.objectContaining({ code: 'bad_signature' }));
    expect(() => verifyServerKeyDocument(doc, { serverName: 'other.example' })).toThrow(expect.objectContaining({ code: 'wrong_server' }));
    const signedByOther = signJson({ ...doc, signatures: undefined }, 'hs.example', old);
    expect(() => verifyServerKeyDocument(signedByOther)).toThrow(expect.objectContaining({ code: 'not_self_signed' }));
    expect(() => verifyServerKeyDocument({ ...doc, verify_keys: {} })).toThrow(ServerKeyDocumentError);
  });
});

describe('defect 12: m.room.redaction without redacts', () => {
  const key = generateSigningKey('v');
  const redaction = (version: string, extra: Record<string, unknown>) =>
    signEvent({ room_id: '!r:hs.example', sender: '@a:hs.example', origin_server_ts: 1, type: 'm.room.redaction', content: {}, prev_events: [], auth_events: [], depth: 2, ...extra }, version, 'hs.example', key);

  it.each(['3', '10'])('v%s: refused by PDU validation', (version) => {
    expect(() => validatePdu(redaction(version, {}), version)).toThrow(expect.objectContaining({ field: 'redacts', code: 'missing_field' }));
    expect(() => validatePdu(redaction(version, { redacts: '$' + 'A'.repeat(43) }), version)).not.toThrow();
  });

  it('v11: redacts lives in content, the top-level field is not required', () => {
    expect(() => validatePdu(redaction('11', { content: { redacts: '$' + 'A'.repeat(43) } }), '11')).not.toThrow();
  });
});

describe('defect 1: a restricted join needs the authoriser server signature', () => {
  const join = () => ({ sender: '@j:joiner.example', type: 'm.room.member', state_key: '@j:joiner.example', content: { membership: 'join', join_authorised_via_users_server: '@r:resident.example' } });
  it.each(['8', '10', '12'])('v%s: requiredEventSigners lists the authoriser server', (version) => {
    expect(requiredEventSigners(join(), version)).toEqual(['joiner.example', 'resident.example']);
  });
  it('v7 has no restricted joins: the sender only', () => {
    expect(requiredEventSigners(join(), '7')).toEqual(['joiner.example']);
  });
});

describe('roomVersionsForEventId (issue 16 defect 4: the version of an invite to a room we are not in)', () => {
  const key = generateSigningKey('v');
  const invite = (version: string, fields: Record<string, unknown>) =>
    signEvent({ sender: '@a:hs.example', origin_server_ts: 1, type: 'm.room.member', state_key: '@b:here.example', content: { membership: 'invite' }, prev_events: [], auth_events: [], depth: 3, ...fields }, version, 'hs.example', key);
  it('finds the versions under which the event has its ID, and only those whose rules it is valid under', () => {
    const v10 = invite('10', { room_id: '!r:hs.example', origin: 'hs.example' });
    const versions = roomVersionsForEventId(v10, computeEventId(v10, '10'));
    expect(versions).toContain('10');
    expect(versions).not.toContain('11'); // v11 redaction drops `origin`: another ID
    expect(versions).not.toContain('12'); // a v12 room ID carries no server
    const v1 = invite('1', { room_id: '!r:hs.example', event_id: '$inv:hs.example' });
    expect(roomVersionsForEventId(v1, '$inv:hs.example')).toEqual(['2', '1']);
    expect(roomVersionsForEventId(v10, '$not-its-id')).toEqual([]);
  });
});
