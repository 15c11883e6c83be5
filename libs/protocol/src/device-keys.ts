// End-to-end encryption keys as clients publish them (client-server "Key management API"): the checks a
// homeserver makes before keeping them. A device's keys must name the user and device they are uploaded
// for and be signed by the device's own ed25519 key; a signed one-time or fallback key must be signed by
// that key too. Sizes are bounded so no one fills the store through key uploads.
import { canonicalJson } from './canonical-json';
import { ProtocolError, type MatrixErrcode } from './errors';
import { SignatureVerificationError, verifyJsonSignature } from './json-signing';
import { VerifyKey } from './signing-key';

export const DEVICE_KEY_LIMITS = {
  /** Canonical JSON bytes of one device's keys object. */
  maxDeviceKeysBytes: 8 * 1024,
  /** Canonical JSON bytes of one one-time or fallback key. */
  maxKeyBytes: 1024,
  /** `<algorithm>:<key id>` length. */
  maxKeyIdLength: 128,
  /** One-time keys in one upload (clients upload up to 50 at a time). */
  maxOneTimeKeysPerUpload: 100,
  /** Fallback keys in one upload (one per algorithm). */
  maxFallbackKeysPerUpload: 4,
  /** Unclaimed one-time keys a device may hold. */
  maxOneTimeKeysHeld: 1000,
} as const;

export class DeviceKeyError extends ProtocolError {
  constructor(
    readonly errcode: MatrixErrcode,
    code: 'bad_keys' | 'too_large' | 'bad_signature',
    message: string,
  ) {
    super(code, message);
  }
}

const invalid = (message: string) => new DeviceKeyError('M_INVALID_PARAM', 'bad_keys', message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const KEY_ID = /^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-+/=]+$/;

function canonicalSize(value: unknown, what: string): number {
  try {
    return Buffer.byteLength(canonicalJson(value), 'utf8');
  } catch (error) {
    throw invalid(`${what} is not canonical JSON: ${(error as Error).message}`);
  }
}

/**
 * Checks `device_keys` uploaded for `userId`'s device `deviceId` and returns the device's ed25519 key
 * (`keys["ed25519:<deviceId>"]`), which must have signed them.
 */
export function checkDeviceKeys(value: unknown, userId: string, deviceId: string): VerifyKey {
  if (!isObject(value)) throw invalid('device_keys must be an object');
  if (canonicalSize(value, 'device_keys') > DEVICE_KEY_LIMITS.maxDeviceKeysBytes) {
    throw new DeviceKeyError('M_TOO_LARGE', 'too_large', `device_keys is larger than ${DEVICE_KEY_LIMITS.maxDeviceKeysBytes} bytes`);
  }
  if (value.user_id !== userId) throw invalid(`device_keys.user_id must be ${userId}`);
  if (value.device_id !== deviceId) throw invalid(`device_keys.device_id must be ${deviceId}`);
  if (!Array.isArray(value.algorithms) || !value.algorithms.every((a) => typeof a === 'string')) throw invalid('device_keys.algorithms must be a list of strings');
  if (!isObject(value.keys) || !Object.entries(value.keys).every(([id, k]) => KEY_ID.test(id) && typeof k === 'string')) {
    throw invalid('device_keys.keys must map <algorithm>:<device id> to key strings');
  }
  const own = value.keys[`ed25519:${deviceId}`];
  if (typeof own !== 'string') throw invalid(`device_keys.keys has no ed25519:${deviceId} key`);
  let deviceKey: VerifyKey;
  try {
    deviceKey = VerifyKey.fromBase64(`ed25519:${deviceId}`, own);
  } catch {
    throw invalid(`device_keys.keys["ed25519:${deviceId}"] is not an ed25519 public key`);
  }
  checkSignedBy(value, userId, deviceKey, 'device_keys');
  return deviceKey;
}

/**
 * Checks one-time or fallback keys (`<algorithm>:<key id>` → key): a string (an unsigned key) or an
 * object with a `key` string, signed by the device's key when it carries signatures or its algorithm
 * starts with `signed_`.
 */
export function checkUploadedKeys(value: unknown, what: string, limit: number, userId: string, deviceKey: VerifyKey | undefined): Record<string, unknown> {
  if (!isObject(value)) throw invalid(`${what} must be an object`);
  const entries = Object.entries(value);
  if (entries.length > limit) throw new DeviceKeyError('M_TOO_LARGE', 'too_large', `${what} holds ${entries.length} keys; at most ${limit} per upload`);
  for (const [keyId, key] of entries) {
    if (keyId.length > DEVICE_KEY_LIMITS.maxKeyIdLength || !KEY_ID.test(keyId)) throw invalid(`${what}: ${JSON.stringify(keyId.slice(0, 64))} is not an <algorithm>:<key id>`);
    if (canonicalSize(key, `${what}["${keyId}"]`) > DEVICE_KEY_LIMITS.maxKeyBytes) {
      throw new DeviceKeyError('M_TOO_LARGE', 'too_large', `${what}["${keyId}"] is larger than ${DEVICE_KEY_LIMITS.maxKeyBytes} bytes`);
    }
    if (typeof key === 'string') {
      if (keyId.startsWith('signed_')) throw invalid(`${what}["${keyId}"] must be a signed key object`);
      continue;
    }
    if (!isObject(key) || typeof key.key !== 'string') throw invalid(`${what}["${keyId}"] must be a key string or an object with a key string`);
    if (key.signatures === undefined && !keyId.startsWith('signed_')) continue;
    if (!deviceKey) throw invalid(`${what}["${keyId}"] is signed but the device has no keys yet: upload device_keys first`);
    checkSignedBy(key, userId, deviceKey, `${what}["${keyId}"]`);
  }
  return value;
}

function checkSignedBy(object: Record<string, unknown>, userId: string, deviceKey: VerifyKey, what: string): void {
  try {
    verifyJsonSignature(object, userId, (entity, keyId) => (entity === userId && keyId === deviceKey.keyId ? deviceKey : undefined));
  } catch (error) {
    if (error instanceof SignatureVerificationError) {
      throw new DeviceKeyError('M_INVALID_PARAM', 'bad_signature', `${what} is not signed by ${userId}'s device key ${deviceKey.keyId}: ${error.message}`);
    }
    throw error;
  }
}
