// End-to-end encryption keys as clients publish them (client-server "Key management API"): the checks a
// homeserver makes before keeping them. A device's keys must name the user and device they are uploaded
// for and be signed by the device's own ed25519 key; a signed one-time or fallback key must be signed by
// that key too. Sizes are bounded so no one fills the store through key uploads.
import { canonicalJson } from './canonical-json';
import { isObject } from './pdu';
import { ProtocolError, type MatrixErrcode } from './errors';
import { decodeBase64 } from './base64';
import { signedJsonBytes } from './json-signing';
import { VerifyKey } from './signing-key';

/**
 * A public key a user published, with the key ID signatures name it by. Not a server key: its ID may
 * hold any characters (`ed25519:<device ID>`, `ed25519:<the key itself>` for cross-signing keys).
 */
export interface PublishedKey {
  keyId: string;
  key: VerifyKey;
}

export function publishedKey(keyId: string, publicKeyBase64: string): PublishedKey {
  // VerifyKey wants a server-style key ID; the real one is kept beside it.
  return { keyId, key: VerifyKey.fromBase64('ed25519:published', publicKeyBase64) };
}

/** The device's own ed25519 key from its stored or uploaded device keys, if it has one. */
export function deviceKeyOf(deviceKeys: Record<string, unknown> | null | undefined, deviceId: string): PublishedKey | undefined {
  const own = (deviceKeys?.keys as Record<string, unknown> | undefined)?.[`ed25519:${deviceId}`];
  if (typeof own !== 'string') return undefined;
  try {
    return publishedKey(`ed25519:${deviceId}`, own);
  } catch {
    return undefined;
  }
}

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
const KEY_ID = /^[A-Za-z0-9_.\-]+:[^\u0000-\u001f]+$/;

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
export function checkDeviceKeys(value: unknown, userId: string, deviceId: string): PublishedKey {
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
  let deviceKey: PublishedKey;
  try {
    deviceKey = publishedKey(`ed25519:${deviceId}`, own);
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
export function checkUploadedKeys(value: unknown, what: string, limit: number, userId: string, deviceKey: PublishedKey | undefined): Record<string, unknown> {
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

export function checkSignedBy(object: Record<string, unknown>, userId: string, signer: PublishedKey, what: string): void {
  const bad = (why: string) => new DeviceKeyError('M_INVALID_PARAM', 'bad_signature', `${what} is not signed by ${userId}'s key ${signer.keyId}: ${why}`);
  const signatures = object.signatures;
  const byUser = isObject(signatures) ? signatures[userId] : undefined;
  const encoded = isObject(byUser) ? byUser[signer.keyId] : undefined;
  if (typeof encoded !== 'string') throw bad('no such signature');
  let signature: Buffer;
  try {
    signature = decodeBase64(encoded);
  } catch {
    throw bad('the signature is not base64');
  }
  if (!signer.key.verify(signedJsonBytes(object), signature)) throw bad('the signature does not verify');
}

export type CrossSigningUsage = 'master' | 'self_signing' | 'user_signing';

/**
 * Checks a cross-signing key of `usage` uploaded for `userId` (`/keys/device_signing/upload`): one
 * ed25519 key, the usage named, and — for the self-signing and user-signing keys — signed by the user's
 * master key. Returns the key it holds.
 */
export function checkCrossSigningKey(value: unknown, userId: string, usage: CrossSigningUsage, masterKey: PublishedKey | undefined): PublishedKey {
  const what = `${usage}_key`;
  if (!isObject(value)) throw invalid(`${what} must be an object`);
  if (canonicalSize(value, what) > DEVICE_KEY_LIMITS.maxDeviceKeysBytes) throw new DeviceKeyError('M_TOO_LARGE', 'too_large', `${what} is larger than ${DEVICE_KEY_LIMITS.maxDeviceKeysBytes} bytes`);
  if (value.user_id !== userId) throw invalid(`${what}.user_id must be ${userId}`);
  if (!Array.isArray(value.usage) || !value.usage.includes(usage) || !value.usage.every((u) => typeof u === 'string')) throw invalid(`${what}.usage must list ${usage}`);
  const entries = isObject(value.keys) ? Object.entries(value.keys) : [];
  if (entries.length !== 1 || !entries[0]![0].startsWith('ed25519:') || typeof entries[0]![1] !== 'string') throw invalid(`${what}.keys must hold exactly one ed25519 key`);
  const [keyId, publicKey] = entries[0] as [string, string];
  let key: PublishedKey;
  try {
    key = publishedKey(keyId, publicKey);
  } catch {
    throw invalid(`${what}.keys["${keyId}"] is not an ed25519 public key`);
  }
  if (keyId !== `ed25519:${publicKey}`) throw invalid(`${what}: the key ID must be ed25519:<the public key>`);
  if (usage !== 'master') {
    if (!masterKey) throw invalid(`${what} must be uploaded with, or after, the master key`);
    checkSignedBy(value, userId, masterKey, what);
  }
  return key;
}
