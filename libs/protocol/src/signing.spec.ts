import fc from 'fast-check';
import nacl from 'tweetnacl';
import { decodeBase64, decodeUrlSafeBase64, encodeUnpaddedBase64, encodeUrlSafeUnpaddedBase64, Base64Error } from './base64';
import { ed25519Sign, ed25519Verify, privateKeyObjectFromSeed, publicKeyFromSeed, publicKeyObject } from './ed25519';
import { signJson, SignatureVerificationError, verifyJsonSignature } from './json-signing';
import { generateSigningKey, parseKeyId, parseSigningKeyFile, serializeSigningKeyFile, SigningKey, SigningKeyError, VerifyKey } from './signing-key';
import { computeEventId, signEvent, verifyEventSignatures, checkContentHash, computeRoomIdFromCreateEvent } from './event-signing';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe('base64', () => {
  it('round-trips both alphabets and accepts padding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (b) => {
        const std = encodeUnpaddedBase64(b);
        expect(std).not.toContain('=');
        expect([...decodeBase64(std)]).toEqual([...b]);
        expect([...decodeBase64(Buffer.from(b).toString('base64'))]).toEqual([...b]);
        expect([...decodeUrlSafeBase64(encodeUrlSafeUnpaddedBase64(b))]).toEqual([...b]);
      }),
    );
  });

  it.each(['a', 'ab$c', 'abc==', 'Zg=', '-_', 'Zm9v YmFy'])('refuses %j as standard base64', (s) => {
    expect(() => decodeBase64(s)).toThrow(Base64Error);
  });
  it('refuses the standard alphabet as URL-safe', () => expect(() => decodeUrlSafeBase64('a+/b')).toThrow(Base64Error));
});

describe('ed25519: node:crypto agrees with tweetnacl', () => {
  it('on keys, signatures and verification of random inputs', () => {
    fc.assert(
      fc.property(bytes(32), fc.uint8Array({ maxLength: 300 }), (seed, message) => {
        const pair = nacl.sign.keyPair.fromSeed(seed);
        expect([...publicKeyFromSeed(seed)]).toEqual([...pair.publicKey]);
        const ours = ed25519Sign(privateKeyObjectFromSeed(seed), message);
        expect([...ours]).toEqual([...nacl.sign.detached(message, pair.secretKey)]);
        expect(nacl.sign.detached.verify(message, ours, pair.publicKey)).toBe(true);
        expect(ed25519Verify(publicKeyObject(pair.publicKey), message, ours)).toBe(true);
        const tampered = Buffer.from(ours);
        tampered[0] ^= 1;
        expect(ed25519Verify(publicKeyObject(pair.publicKey), message, tampered)).toBe(false);
      }),
      // tweetnacl is pure JavaScript and slow under jest; a few random cases are enough to catch a wrong DER prefix.
      { numRuns: 6 },
    );
  });
});

describe('signing keys', () => {
  it('round-trips the Synapse key file format', () => {
    const keys = [generateSigningKey(), generateSigningKey('auto')];
    const text = serializeSigningKeyFile(keys);
    expect(text).toMatch(/^ed25519 a_[A-Za-z]{4} [A-Za-z0-9+/]{43}\ned25519 auto [A-Za-z0-9+/]{43}\n$/);
    const parsed = parseSigningKeyFile(text + '\n');
    expect(parsed.map((k) => [k.keyId, k.publicKeyBase64])).toEqual(keys.map((k) => [k.keyId, k.publicKeyBase64]));
  });

  it.each([
    ['ed25519 a_1', 'invalid_key_file'],
    ['curve25519 a_1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1', 'unsupported_algorithm'],
    ['ed25519 a-1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1', 'invalid_key_version'],
    ['ed25519 a_1 YJDBA9Xnr2sVqXD9', 'invalid_seed'],
  ])('refuses %j with %s', (line, code) => {
    expect(() => parseSigningKeyFile(line)).toThrow(expect.objectContaining({ code }));
    expect(() => parseSigningKeyFile(line)).toThrow(SigningKeyError);
  });

  it('parses key IDs', () => {
    expect(parseKeyId('ed25519:a_Xy9')).toEqual({ algorithm: 'ed25519', version: 'a_Xy9' });
    expect(() => parseKeyId('ed25519:a-b')).toThrow(SigningKeyError);
    expect(() => parseKeyId('nocolon')).toThrow(SigningKeyError);
  });

  it('never serialises the seed through JSON', () => {
    expect(JSON.stringify(generateSigningKey('x'))).not.toMatch(/seed/i);
  });

  it('judges key validity by valid_until_ts and expired_ts', () => {
    const k = generateSigningKey('v');
    expect(k.verifyKey({ validUntilTs: 100 }).isValidAt(100)).toBe(true);
    expect(k.verifyKey({ validUntilTs: 100 }).isValidAt(101)).toBe(false);
    expect(k.verifyKey({ expiredTs: 100 }).isValidAt(99)).toBe(true);
    expect(k.verifyKey({ expiredTs: 100 }).isValidAt(100)).toBe(false);
  });
});

const json = fc.dictionary(fc.string({ unit: 'grapheme-ascii' }), fc.oneof(fc.string(), fc.maxSafeInteger(), fc.boolean()), { maxKeys: 6 });

describe('JSON signing', () => {
  const a = generateSigningKey('a');
  const b = generateSigningKey('b');
  const keys = new Map([['one.example', a.verifyKey()], ['two.example', b.verifyKey()]]);
  const lookup = (server: string, keyId: string) => {
    const k = keys.get(server);
    return k && k.keyId === keyId ? k : undefined;
  };

  it('round-trips with several signers, ignoring unsigned', () => {
    fc.assert(
      fc.property(json, (obj) => {
        const { signatures: _s, unsigned: _u, ...clean } = obj;
        const signed = signJson(signJson({ ...clean, unsigned: { age: 1 } }, 'one.example', a), 'two.example', b);
        expect(verifyJsonSignature(signed, 'one.example', lookup)).toEqual(['ed25519:a']);
        expect(verifyJsonSignature({ ...signed, unsigned: { age: 99 } }, 'two.example', lookup)).toEqual(['ed25519:b']);
      }),
      { numRuns: 40 },
    );
  });

  it('breaks when any signed value changes', () => {
    fc.assert(
      fc.property(json, fc.string({ minLength: 1 }), (obj, extra) => {
        const { signatures: _s, unsigned: _u, ...clean } = obj;
        const signed = signJson(clean, 'one.example', a);
        const tampered = { ...signed, ['x' + extra]: 'added' };
        expect(() => verifyJsonSignature(tampered, 'one.example', lookup)).toThrow(expect.objectContaining({ code: 'bad_signature' }));
      }),
      { numRuns: 40 },
    );
  });

  it('names what is missing', () => {
    const signed = signJson({ x: 1 }, 'one.example', a);
    expect(() => verifyJsonSignature(signed, 'two.example', lookup)).toThrow(expect.objectContaining({ code: 'missing_signature', serverName: 'two.example' }));
    expect(() => verifyJsonSignature(signed, 'one.example', () => undefined)).toThrow(expect.objectContaining({ code: 'no_known_key' }));
    const garbled = { ...signed, signatures: { 'one.example': { 'ed25519:a': 'not base64!' } } };
    expect(() => verifyJsonSignature(garbled, 'one.example', lookup)).toThrow(SignatureVerificationError);
    expect(() => verifyJsonSignature(signed, 'one.example', lookup, { validAtTs: 5 })).not.toThrow();
    const expiredLookup = () => new VerifyKey(a.keyId, a.publicKey, { expiredTs: 4 });
    expect(() => verifyJsonSignature(signed, 'one.example', expiredLookup, { validAtTs: 5 })).toThrow(expect.objectContaining({ code: 'no_known_key' }));
  });
});

describe('event signing across room versions', () => {
  const key = new SigningKey('k1', new Uint8Array(32).fill(7));
  const lookup = (server: string, keyId: string) => (server === 'hs.example' && keyId === key.keyId ? key.verifyKey() : undefined);
  const base = {
    room_id: '!room:hs.example',
    sender: '@alice:hs.example',
    origin_server_ts: 1_700_000_000_000,
    type: 'm.room.message',
    content: { body: 'hello', msgtype: 'm.text' },
    prev_events: [],
    auth_events: [],
    depth: 5,
    unsigned: { age: 10 },
  };

  it.each(['1', '3', '4', '6', '9', '10', '11', '12'])('signs and verifies in room version %s; tampering content fails the hash, not the signature', (version) => {
    const event = version === '1' ? { ...base, event_id: '$abc:hs.example' } : base;
    const signed = signEvent(event, version, 'hs.example', key);
    expect(verifyEventSignatures(signed, version, lookup).get('hs.example')).toEqual(['ed25519:k1']);
    expect(checkContentHash(signed, version)).toBe(true);
    const edited = { ...signed, content: { body: 'edited' } };
    expect(() => verifyEventSignatures(edited, version, lookup)).not.toThrow();
    expect(checkContentHash(edited, version)).toBe(false);
    expect(() => verifyEventSignatures({ ...signed, sender: '@mallory:hs.example' }, version, lookup)).toThrow(SignatureVerificationError);
    const id = computeEventId(signed, version);
    expect(id).toMatch(version === '1' ? /^\$abc:hs\.example$/ : version === '3' ? /^\$[A-Za-z0-9+/]{43}$/ : /^\$[A-Za-z0-9_-]{43}$/);
    // A stored copy that carries its event_id hashes the same from v3 on.
    if (version !== '1') expect(computeEventId({ ...signed, event_id: id }, version)).toBe(id);
  });

  it('rejects keys expired before origin_server_ts from room version 5 on, not before', () => {
    const signed = signEvent(base, '4', 'hs.example', key);
    const expired = () => key.verifyKey({ expiredTs: base.origin_server_ts - 1 });
    expect(() => verifyEventSignatures(signed, '4', expired)).not.toThrow();
    expect(() => verifyEventSignatures(signEvent(base, '5', 'hs.example', key), '5', expired)).toThrow(expect.objectContaining({ code: 'no_known_key' }));
  });

  it('requires the event ID server to sign too in room versions 1–2', () => {
    const signed = signEvent({ ...base, event_id: '$x:other.example' }, '1', 'hs.example', key);
    expect(() => verifyEventSignatures(signed, '1', lookup)).toThrow(expect.objectContaining({ code: 'missing_signature', serverName: 'other.example' }));
  });

  it('derives a v12 room ID from the create event', () => {
    const create = signEvent({ ...base, room_id: undefined, type: 'm.room.create', state_key: '', content: { room_version: '12' } }, '12', 'hs.example', key);
    expect(computeRoomIdFromCreateEvent(create, '12')).toBe('!' + computeEventId(create, '12').slice(1));
    expect(() => computeRoomIdFromCreateEvent(create, '11')).toThrow(expect.objectContaining({ code: 'invalid_event' }));
  });
});
