// The third-party invite signature rule on its own: "any signature in `signed` matches any public key".
import { encodeUnpaddedBase64, encodeUrlSafeUnpaddedBase64, signJson, SigningKey } from '@fedgate/protocol';
import { toRoomEvent } from './event';
import { thirdPartyInvitePublicKeys, verifyThirdPartyInviteSignature } from './third-party-invite';

const identityKey = new SigningKey('0', new Uint8Array(32).fill(7));
const rotatedKey = new SigningKey('1', new Uint8Array(32).fill(8));
const strangerKey = new SigningKey('0', new Uint8Array(32).fill(9));
const base = { mxid: '@carol:c', sender: '@alice:a', token: 'tok' };

const signedBy = (key: SigningKey, object: Record<string, unknown> = base, entity = 'id.example') => signJson(object, entity, key);
const keys = (...signing: SigningKey[]) => signing.map((k) => k.publicKeyBase64);
const renameKeyIds = (signed: { signatures: Record<string, Record<string, string>> }, keyId: string) => ({
  ...signed,
  signatures: Object.fromEntries(Object.entries(signed.signatures).map(([entity, sigs]) => [entity, { [keyId]: Object.values(sigs)[0] }])),
});

interface Case {
  name: string;
  signed: () => Record<string, unknown>;
  publicKeys: () => string[];
  valid: boolean;
}

const cases: Case[] = [
  { name: 'a signature by the one public key', signed: () => signedBy(identityKey), publicKeys: () => keys(identityKey), valid: true },
  { name: 'a signature by the second of several public keys', signed: () => signedBy(rotatedKey), publicKeys: () => keys(identityKey, rotatedKey), valid: true },
  { name: 'a signature by a key the invite does not list', signed: () => signedBy(strangerKey), publicKeys: () => keys(identityKey), valid: false },
  { name: 'no public keys at all', signed: () => signedBy(identityKey), publicKeys: () => [], valid: false },
  { name: 'one bad and one good signature (any match is enough)', signed: () => signedBy(identityKey, signedBy(strangerKey, base, 'other.example')), publicKeys: () => keys(identityKey), valid: true },
  { name: 'two signatures by the same entity, the second matching', signed: () => signJson(signedBy(strangerKey), 'id.example', rotatedKey), publicKeys: () => keys(rotatedKey), valid: true },
  { name: 'the key ID is not looked at (the invite lists keys, not key IDs)', signed: () => renameKeyIds(signedBy(identityKey), 'anything:0'), publicKeys: () => keys(identityKey), valid: true },
  { name: 'a URL-safe base64 public key', signed: () => signedBy(identityKey), publicKeys: () => [encodeUrlSafeUnpaddedBase64(identityKey.publicKey)], valid: true },
  { name: 'a padded base64 public key', signed: () => signedBy(identityKey), publicKeys: () => [identityKey.publicKey.toString('base64')], valid: true },
  { name: 'a public key that is not base64 is skipped', signed: () => signedBy(identityKey), publicKeys: () => ['not base64!', ...keys(identityKey)], valid: true },
  { name: 'a public key of the wrong length is skipped', signed: () => signedBy(identityKey), publicKeys: () => [encodeUnpaddedBase64(Buffer.alloc(16)), ...keys(identityKey)], valid: true },
  { name: 'unsigned is not part of the signed bytes', signed: () => ({ ...signedBy(identityKey), unsigned: { age: 5 } }), publicKeys: () => keys(identityKey), valid: true },
  { name: 'a field changed after signing', signed: () => ({ ...signedBy(identityKey), mxid: '@mallory:m' }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'a field added after signing', signed: () => ({ ...signedBy(identityKey), extra: 1 }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'key order in the object does not matter (canonical JSON)', signed: () => { const { signatures, ...rest } = signedBy(identityKey); return { token: rest.token, signatures, sender: rest.sender, mxid: rest.mxid }; }, publicKeys: () => keys(identityKey), valid: true },
  { name: 'nested objects and non-ASCII are signed canonically', signed: () => signedBy(identityKey, { ...base, extra: { z: [1, 'ü'], a: null } }), publicKeys: () => keys(identityKey), valid: true },
  { name: 'no signatures', signed: () => ({ ...base }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'signatures is not an object', signed: () => ({ ...base, signatures: 'x' }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'an entity whose signatures are not an object', signed: () => ({ ...signedBy(identityKey), signatures: { 'id.example': ['x'] } }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'a signature that is not a string', signed: () => ({ ...base, signatures: { 'id.example': { 'ed25519:0': 5 } } }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'a signature that is not base64', signed: () => ({ ...base, signatures: { 'id.example': { 'ed25519:0': '***' } } }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'a signature of the wrong length', signed: () => ({ ...base, signatures: { 'id.example': { 'ed25519:0': encodeUnpaddedBase64(Buffer.alloc(32)) } } }), publicKeys: () => keys(identityKey), valid: false },
  { name: 'a value canonical JSON cannot encode (lone surrogate)', signed: () => ({ ...signedBy(identityKey), mxid: '@carol\ud800:c' }), publicKeys: () => keys(identityKey), valid: false },
];

describe('verifyThirdPartyInviteSignature', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(verifyThirdPartyInviteSignature(c.signed(), c.publicKeys())).toBe(c.valid);
  });
});

describe('thirdPartyInvitePublicKeys', () => {
  const invite = (content: Record<string, unknown>) => toRoomEvent({ event_id: '$tpi', type: 'm.room.third_party_invite', sender: '@alice:a', state_key: 'tok', content });

  it.each([
    ['public_key only', { public_key: 'k1' }, ['k1']],
    ['public_keys only', { public_keys: [{ public_key: 'k1' }, { public_key: 'k2', key_validity_url: 'https://id.example/v' }] }, ['k1', 'k2']],
    ['both, public_key first', { public_key: 'k0', public_keys: [{ public_key: 'k1' }] }, ['k0', 'k1']],
    ['malformed entries are skipped', { public_key: 5, public_keys: [null, 'k1', { public_key: 7 }, { public_key: 'k2' }] }, ['k2']],
    ['public_keys not an array', { public_keys: { public_key: 'k1' } }, []],
    ['neither', {}, []],
  ])('%s', (_name, content, expected) => {
    expect(thirdPartyInvitePublicKeys(invite(content))).toEqual(expected);
  });
});
