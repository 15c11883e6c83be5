import { checkCrossSigningKey, checkDeviceKeys, checkUploadedKeys, DEVICE_KEY_LIMITS, DeviceKeyError } from './device-keys';
import { signJson } from './json-signing';
import { generateSigningKey, type VerifyKey } from './signing-key';

const userId = '@alice:gw.test';
const device = generateSigningKey('DEV1');
const deviceKeys = (overrides: Record<string, unknown> = {}) =>
  signJson(
    {
      user_id: userId,
      device_id: 'DEV1',
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: { 'ed25519:DEV1': device.publicKeyBase64, 'curve25519:DEV1': 'curvecurvecurve' },
      ...overrides,
    },
    userId,
    device,
  );
const published = (key: { verifyKey(): VerifyKey }, keyId: string) => ({ keyId, key: key.verifyKey() });
const failure = (fn: () => unknown): [string, string] | null => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DeviceKeyError) return [error.errcode, error.code];
    throw error;
  }
  return null;
};

describe('device keys upload checks', () => {
  it('accepts device keys self-signed by the device ed25519 key and returns that key', () => {
    expect(checkDeviceKeys(deviceKeys(), userId, 'DEV1')).toMatchObject({ keyId: 'ed25519:DEV1', key: { publicKeyBase64: device.publicKeyBase64 } });
  });

  it('accepts a device ID outside the server key ID grammar (bridges choose their own)', () => {
    const key = generateSigningKey('x');
    const keys = { user_id: userId, device_id: 'bridge-dev.1', algorithms: [], keys: { 'ed25519:bridge-dev.1': key.publicKeyBase64 } };
    const signed = signJson(keys, userId, { keyId: 'ed25519:bridge-dev.1', sign: (m: Uint8Array) => key.sign(m) } as never);
    expect(checkDeviceKeys(signed, userId, 'bridge-dev.1').keyId).toBe('ed25519:bridge-dev.1');
  });

  it('refuses device keys signed by another key (bad signature)', () => {
    const forged = signJson({ ...deviceKeys(), signatures: undefined }, userId, generateSigningKey('DEV1'));
    expect(failure(() => checkDeviceKeys(forged, userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
    const unsigned = { ...deviceKeys(), signatures: {} };
    expect(failure(() => checkDeviceKeys(unsigned, userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
    const tampered = { ...deviceKeys(), algorithms: ['m.olm.v1.curve25519-aes-sha2'] };
    expect(failure(() => checkDeviceKeys(tampered, userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
  });

  it('refuses device keys for another user or device, or without the device ed25519 key', () => {
    expect(failure(() => checkDeviceKeys(deviceKeys({ user_id: '@bob:gw.test' }), userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkDeviceKeys(deviceKeys(), userId, 'DEV2'))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkDeviceKeys(deviceKeys({ keys: { 'curve25519:DEV1': 'x' } }), userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkDeviceKeys([], userId, 'DEV1'))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
  });

  it('refuses oversized device keys', () => {
    const big = deviceKeys({ padding: 'x'.repeat(DEVICE_KEY_LIMITS.maxDeviceKeysBytes) });
    expect(failure(() => checkDeviceKeys(big, userId, 'DEV1'))).toEqual(['M_TOO_LARGE', 'too_large']);
  });

  it('accepts signed one-time keys signed by the device key and plain curve25519 keys', () => {
    const keys = { 'signed_curve25519:AAAA': signJson({ key: 'k1' }, userId, device), 'curve25519:BBBB': 'k2' };
    expect(checkUploadedKeys(keys, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1'))).toBe(keys);
  });

  it('refuses one-time keys with a bad signature, unsigned signed_ keys, or signed keys before the device has keys', () => {
    const other = generateSigningKey('DEV1');
    expect(failure(() => checkUploadedKeys({ 'signed_curve25519:A': signJson({ key: 'k' }, userId, other) }, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
    expect(failure(() => checkUploadedKeys({ 'signed_curve25519:A': 'k' }, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkUploadedKeys({ 'signed_curve25519:A': { key: 'k' } }, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
    expect(failure(() => checkUploadedKeys({ 'signed_curve25519:A': signJson({ key: 'k' }, userId, device) }, 'one_time_keys', 100, userId, undefined))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkUploadedKeys({ 'no-colon': 'k' }, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
  });

  it('refuses oversized one-time key uploads: too many keys, or one key too large', () => {
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`curve25519:K${i}`, 'k']));
    expect(failure(() => checkUploadedKeys(many, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_TOO_LARGE', 'too_large']);
    const huge = { 'curve25519:K': 'k'.repeat(DEVICE_KEY_LIMITS.maxKeyBytes) };
    expect(failure(() => checkUploadedKeys(huge, 'one_time_keys', 100, userId, published(device, 'ed25519:DEV1')))).toEqual(['M_TOO_LARGE', 'too_large']);
  });
});

describe('cross-signing key upload checks', () => {
  const master = generateSigningKey('m');
  const masterKeyObject = (overrides: Record<string, unknown> = {}) => ({ user_id: userId, usage: ['master'], keys: { [`ed25519:${master.publicKeyBase64}`]: master.publicKeyBase64 }, ...overrides });
  const selfSigning = generateSigningKey('s');
  const subKey = (usage: string, signer = master) => {
    const object = { user_id: userId, usage: [usage], keys: { [`ed25519:${selfSigning.publicKeyBase64}`]: selfSigning.publicKeyBase64 } };
    // Signed as the master key: the key ID in the signature is ed25519:<master public key>.
    return signJson(object, userId, { keyId: `ed25519:${master.publicKeyBase64}`, sign: (m: Uint8Array) => signer.sign(m) } as never);
  };

  it('accepts a master key and a self-signing key signed by it', () => {
    const masterVerify = checkCrossSigningKey(masterKeyObject(), userId, 'master', undefined);
    expect(masterVerify).toMatchObject({ keyId: `ed25519:${master.publicKeyBase64}`, key: { publicKeyBase64: master.publicKeyBase64 } });
    expect(checkCrossSigningKey(subKey('self_signing'), userId, 'self_signing', masterVerify).key.publicKeyBase64).toBe(selfSigning.publicKeyBase64);
  });

  it('refuses a self-signing key not signed by the master key, and keys for another user or usage', () => {
    const masterVerify = checkCrossSigningKey(masterKeyObject(), userId, 'master', undefined);
    expect(failure(() => checkCrossSigningKey(subKey('self_signing', generateSigningKey('x')), userId, 'self_signing', masterVerify))).toEqual(['M_INVALID_PARAM', 'bad_signature']);
    expect(failure(() => checkCrossSigningKey(subKey('self_signing'), userId, 'self_signing', undefined))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkCrossSigningKey(masterKeyObject({ user_id: '@bob:gw.test' }), userId, 'master', undefined))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkCrossSigningKey(masterKeyObject({ usage: ['self_signing'] }), userId, 'master', undefined))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
    expect(failure(() => checkCrossSigningKey(masterKeyObject({ keys: { 'ed25519:other': master.publicKeyBase64 } }), userId, 'master', undefined))).toEqual(['M_INVALID_PARAM', 'bad_keys']);
  });
});
