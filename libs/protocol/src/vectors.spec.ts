// Every protocol-level vector in ../shared/vectors, read from the files at test time.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  canonicalJson,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  decodeBase64,
  encodeUnpaddedBase64,
  parseJson,
  redactEvent,
  signEvent,
  signJson,
  SigningKey,
  verifyEventSignatures,
  verifyJsonSignature,
  checkContentHash,
  SignatureVerificationError,
  JsonParseError,
} from './index';

const VECTORS_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'vectors');
const read = (file: string) => JSON.parse(readFileSync(path.join(VECTORS_DIR, file), 'utf8'));

const spec = read('matrix-spec-appendices.json');
const gmsl = read('gomatrixserverlib-crypto-json.json');
const synapse = read('synapse-event-signing.json');

const seedKey = (seedB64: string) => new SigningKey('1', decodeBase64(seedB64));
const specKey = seedKey(spec.signing_key.seed_unpadded_b64);
const lookupFor = (key: SigningKey) => (server: string, keyId: string) => (server === 'domain' && keyId === key.keyId ? key.verifyKey() : undefined);

describe('spec appendix vectors', () => {
  it.each(spec.unpadded_base64.map((v: any) => [v.input, v.output]) as Array<[any, any]>)('unpadded base64 of %j is %j', (input, output) => {
    expect(encodeUnpaddedBase64(Buffer.from(input as string, 'utf8'))).toBe(output);
    expect(decodeBase64(output as string).toString('utf8')).toBe(input);
  });

  it.each(spec.canonical_json.map((v: any) => [v.input_text, v.expected_canonical]) as Array<[any, any]>)('canonical JSON of %j', (input, expected) => {
    // The -0 / 1e10 example is only valid under the lenient (v1–5) rules.
    expect(canonicalJson(parseJson(input as string), { strict: false })).toBe(expected);
  });

  it('derives the public key from the seed', () => {
    expect(specKey.publicKeyBase64).toBe(spec.signing_key.derived_public_key_unpadded_b64);
  });

  it.each(spec.json_signing.map((v: any, i: number) => [i, v]) as Array<[any, any]>)('JSON signing vector %d', (_i, v: any) => {
    expect(signJson(v.input, 'domain', specKey)).toEqual(v.expected_signed);
    expect(verifyJsonSignature(v.expected_signed, 'domain', lookupFor(specKey))).toEqual(['ed25519:1']);
  });

  it.each(spec.event_signing.map((v: any, i: number) => [i, v]) as Array<[any, any]>)('event signing vector %d (room v1)', (_i, v: any) => {
    const signed = signEvent(v.input, '1', 'domain', specKey);
    expect(signed).toEqual(v.expected_signed);
    expect(verifyEventSignatures(v.expected_signed, '1', lookupFor(specKey), { servers: ['domain'] }).get('domain')).toEqual(['ed25519:1']);
    expect(checkContentHash(v.expected_signed, '1')).toBe(true);
    const derived = v.derived_not_in_spec;
    expect(computeContentHash(v.input, '1')).toBe(derived.content_hash_sha256_unpadded_b64);
    expect(canonicalJson(redactEvent(signed, '1'), { strict: false }).replace(/,"signatures":\{[^}]*\}\}/, '')).toBe(derived.redacted_for_signing_canonical);
    expect(computeReferenceHash(signed, '1')).toBe(derived.reference_hash_v1_redaction_unpadded_b64);
  });
});

describe('synapse event signing vectors (room v1)', () => {
  const key = seedKey(synapse.key.seed_unpadded_b64);
  it.each(synapse.cases.map((c: any) => [c.name, c]) as Array<[any, any]>)('%s', (_name, c: any) => {
    const signed = signEvent(c.input, '1', 'domain', key);
    expect(signed.hashes.sha256).toBe(c.expected_hashes_sha256);
    expect(signed.signatures.domain['ed25519:1']).toBe(c.expected_signature);
    expect(signed.unsigned).toEqual(c.input.unsigned);
  });
});

describe('gomatrixserverlib vectors', () => {
  it.each(gmsl.event_ids.map((v: any) => [v.name, v]) as Array<[any, any]>)('%s', (_name, v: any) => {
    expect(computeEventId(parseJson(v.event_json) as any, v.room_version)).toBe(v.expected_event_id);
  });

  it('signs the extra v1 event and rejects tampered copies', () => {
    const v = gmsl.extra_signed_event_v1;
    const signed = signEvent(v.input, '1', 'domain', specKey);
    expect(signed.hashes.sha256).toBe(v.expected_hashes_sha256);
    expect(signed.signatures.domain['ed25519:1']).toBe(v.expected_signature_domain_ed25519_1);
    const lookup = lookupFor(specKey);
    expect(() => verifyEventSignatures({ ...signed, type: 'modified' }, '1', lookup, { servers: ['domain'] })).toThrow(SignatureVerificationError);
    expect(() => verifyEventSignatures({ ...signed, hashes: { sha256: 'modifiedhash' } }, '1', lookup, { servers: ['domain'] })).toThrow(SignatureVerificationError);
  });

  const redactionCases: Array<[string, string, string, string]> = gmsl.redaction.flatMap((r: any) =>
    Object.keys(r.expected_canonical).map((version) => [r.name, version, r.input, r.expected_canonical[version]]),
  );
  it.each(redactionCases)('redaction %s in room v%s', (_name, version, input, expected) => {
    expect(canonicalJson(redactEvent(parseJson(input) as any, version))).toBe(expected);
  });

  it.each(gmsl.canonical_conversion.map((v: any) => [v.name, v]) as Array<[any, any]>)('canonical conversion: %s', (_name, v: any) => {
    expect(canonicalJson(parseJson(v.input), { strict: false })).toBe(v.canonical);
  });

  const strictness: Array<[string, string, boolean, boolean | undefined]> = gmsl.canonical_strictness_room_v6_plus.map((v: any) => [
    v.name,
    v.input,
    v.valid ?? v.valid_v6,
    v.valid_v1,
  ]);
  it.each(strictness)('strictness: %s', (_name, input, validV6, validV1) => {
    const strictParse = () => canonicalJson(parseJson(input, { strict: true }));
    if (validV6) expect(strictParse).not.toThrow();
    else expect(strictParse).toThrow(JsonParseError);
    if (validV1 !== undefined) expect(() => canonicalJson(parseJson(input), { strict: false })).not.toThrow();
  });

  it.each(gmsl.compact_escape_normalisation.map((v: any) => [v.input, v.expected]) as Array<[any, any]>)('escapes %s as %s', (input, expected) => {
    expect(canonicalJson(parseJson(input as string))).toBe(expected);
  });
});
