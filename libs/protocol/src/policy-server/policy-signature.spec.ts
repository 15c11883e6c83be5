import { encodeUnpaddedBase64, encodeUrlSafeUnpaddedBase64 } from '../base64';
import { redactedSigningText, signEvent } from '../event-signing';
import { generateSigningKey, type SigningKey } from '../signing-key';
import {
  decodePolicyServerKey,
  isExemptFromPolicyServer,
  parsePolicyServerWellKnown,
  parsePolicySignResponse,
  policySignRequestBody,
  POLICY_SERVER_KEY_ID,
  verifyPolicyServerSignature,
  withPolicyServerSignature,
} from './policy-signature';

const psKey = generateSigningKey('policy_server');
const psPublic = encodeUnpaddedBase64(psKey.verifyKey().publicKey);

function message(body: string, senderKey: SigningKey = generateSigningKey()) {
  const event = {
    room_id: '!r:hs.test',
    sender: '@alice:hs.test',
    type: 'm.room.message',
    content: { body },
    prev_events: ['$p'],
    auth_events: ['$a'],
    depth: 3,
    origin_server_ts: 1000,
    unsigned: { age: 4 },
  };
  return signEvent(event, '10', 'hs.test', senderKey);
}

const policySignature = (event: Record<string, unknown>, key = psKey) => encodeUnpaddedBase64(key.sign(Buffer.from(redactedSigningText(event, '10'), 'utf8')));

describe('policy server signatures', () => {
  it('exempts only the m.room.policy state event with an empty state key', () => {
    expect(isExemptFromPolicyServer({ type: 'm.room.policy', state_key: '' })).toBe(true);
    expect(isExemptFromPolicyServer({ type: 'm.room.policy', state_key: 'x' })).toBe(false);
    expect(isExemptFromPolicyServer({ type: 'm.room.policy' })).toBe(false);
    expect(isExemptFromPolicyServer({ type: 'm.room.member', state_key: '' })).toBe(false);
  });

  it('decodes a 32-byte key in either base64 alphabet and nothing else', () => {
    const raw = psKey.verifyKey().publicKey;
    expect(decodePolicyServerKey(encodeUnpaddedBase64(raw))?.equals(raw)).toBe(true);
    expect(decodePolicyServerKey(encodeUrlSafeUnpaddedBase64(raw))?.equals(raw)).toBe(true);
    expect(decodePolicyServerKey('6yhHGKhCiXTSEN2ksjV7kX_N6rBQZ3Xb-M7LlC6NS-s')).toHaveLength(32);
    for (const bad of [undefined, 5, '', 'AAAA', 'not base64!', encodeUnpaddedBase64(Buffer.alloc(33))]) expect(decodePolicyServerKey(bad)).toBeUndefined();
  });

  it('accepts the policy server signature over the redacted event, whatever else the event carries', () => {
    const event = message('hello');
    const signed = withPolicyServerSignature(event, 'ps.test', policySignature(event));
    expect(signed.signatures['hs.test']).toEqual(event.signatures['hs.test']);
    expect(verifyPolicyServerSignature(signed, '10', 'ps.test', psPublic)).toEqual({ valid: true });
    // Redaction keeps the signature valid (it covers the redacted form), as for server signatures.
    expect(verifyPolicyServerSignature({ ...signed, content: {} }, '10', 'ps.test', psPublic)).toEqual({ valid: true });
  });

  it('ignores the via server federation-key signatures and needs the policy_server one', () => {
    const event = message('hello');
    const viaKey = generateSigningKey('fed');
    const fedSigned = { ...event, signatures: { ...event.signatures, 'ps.test': { 'ed25519:fed': encodeUnpaddedBase64(viaKey.sign(Buffer.from('x'))) } } };
    expect(verifyPolicyServerSignature(fedSigned, '10', 'ps.test', psPublic)).toMatchObject({ valid: false, problem: 'missing_signature' });
    const both = withPolicyServerSignature(fedSigned, 'ps.test', policySignature(event));
    expect(verifyPolicyServerSignature(both, '10', 'ps.test', psPublic)).toEqual({ valid: true });
  });

  it.each([
    ['missing', (e: Record<string, unknown>) => e, 'missing_signature'],
    ['signed by another key', (e: Record<string, unknown>) => withPolicyServerSignature(e, 'ps.test', policySignature(e, generateSigningKey())), 'bad_signature'],
    ['signature of a different event', (e: Record<string, unknown>) => withPolicyServerSignature(e, 'ps.test', policySignature(message('other'))), 'bad_signature'],
    ['signed under another server name', (e: Record<string, unknown>) => withPolicyServerSignature(e, 'evil.test', policySignature(e)), 'missing_signature'],
    ['garbage signature', (e: Record<string, unknown>) => withPolicyServerSignature(e, 'ps.test', '!!'), 'bad_signature'],
  ])('refuses a signature that is %s', (_name, tamper, problem) => {
    expect(verifyPolicyServerSignature(tamper(message('hello')), '10', 'ps.test', psPublic)).toMatchObject({ valid: false, problem });
  });

  it('refuses everything when the key in the room is unusable', () => {
    const event = message('hello');
    expect(verifyPolicyServerSignature(withPolicyServerSignature(event, 'ps.test', policySignature(event)), '10', 'ps.test', 'AAAA')).toMatchObject({ valid: false, problem: 'unusable_key' });
  });

  it('reads the sign answer only under via and the policy_server key ID', () => {
    expect(parsePolicySignResponse({ 'ps.test': { [POLICY_SERVER_KEY_ID]: 'sig' } }, 'ps.test')).toEqual({ ok: true, signature: 'sig' });
    expect(parsePolicySignResponse({ 'other.test': { [POLICY_SERVER_KEY_ID]: 'sig' } }, 'ps.test')).toMatchObject({ ok: false });
    expect(parsePolicySignResponse({ 'ps.test': { 'ed25519:a': 'sig' } }, 'ps.test')).toMatchObject({ ok: false });
    expect(parsePolicySignResponse({}, 'ps.test')).toMatchObject({ ok: false });
    expect(parsePolicySignResponse([], 'ps.test')).toMatchObject({ ok: false });
  });

  it('sends the PDU without unsigned', () => {
    expect(policySignRequestBody(message('x'))).not.toHaveProperty('unsigned');
  });

  it('reads a well-known answer', () => {
    expect(parsePolicyServerWellKnown({ public_keys: { ed25519: psPublic } })).toEqual({ ok: true, publicKeys: { ed25519: psPublic } });
    expect(parsePolicyServerWellKnown({ public_keys: { ed25519: 'short' } })).toMatchObject({ ok: false });
    expect(parsePolicyServerWellKnown({})).toMatchObject({ ok: false });
  });
});
