// Server signing keys: the private seed we sign with, the public keys we verify with, key IDs, and the
// Synapse-compatible key file format (`ed25519 <version> <unpadded base64 seed>`, one key a line).
import { randomBytes, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64 } from './base64';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ed25519Sign, ed25519Verify, privateKeyObjectFromSeed, publicKeyFromSeed, publicKeyObject } from './ed25519';
import { ProtocolError } from './errors';

export class SigningKeyError extends ProtocolError {
  readonly errcode = 'M_INVALID_PARAM';
}

export const ED25519 = 'ed25519';
const KEY_VERSION = /^[a-zA-Z0-9_]+$/;

export interface KeyId {
  algorithm: string;
  version: string;
}

/** Parses `algorithm:version`. The version grammar is `[a-zA-Z0-9_]+`; any algorithm name is accepted here. */
export function parseKeyId(keyId: string): KeyId {
  const colon = typeof keyId === 'string' ? keyId.indexOf(':') : -1;
  if (colon <= 0) throw new SigningKeyError('invalid_key_id', `key ID ${JSON.stringify(keyId)} is not algorithm:version`);
  const algorithm = keyId.slice(0, colon);
  const version = keyId.slice(colon + 1);
  if (!KEY_VERSION.test(version)) throw new SigningKeyError('invalid_key_id', `key ID ${JSON.stringify(keyId)} has a version outside [a-zA-Z0-9_]`);
  return { algorithm, version };
}

const ED25519_KEY_ID = /^ed25519:[a-zA-Z0-9_]+$/;

export function isEd25519KeyId(keyId: string): boolean {
  return ED25519_KEY_ID.test(keyId);
}

export function formatKeyId(version: string, algorithm = ED25519): string {
  if (!KEY_VERSION.test(version)) throw new SigningKeyError('invalid_key_version', `key version ${JSON.stringify(version)} is outside [a-zA-Z0-9_]`);
  return `${algorithm}:${version}`;
}

/** A public ed25519 key with what is known of its validity. */
export class VerifyKey {
  readonly keyId: string;
  readonly publicKey: Buffer;
  /** The key may be trusted for events up to this time (from `valid_until_ts`); undefined: no bound known. */
  readonly validUntilTs?: number;
  /** For an old key: when it stopped being used (from `old_verify_keys[…].expired_ts`). */
  readonly expiredTs?: number;
  private keyObject?: KeyObject;

  constructor(keyId: string, publicKey: Uint8Array, validity?: { validUntilTs?: number; expiredTs?: number }) {
    if (!isEd25519KeyId(keyId)) throw new SigningKeyError('invalid_key_id', `not an ed25519 key ID: ${JSON.stringify(keyId)}`);
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new SigningKeyError('invalid_public_key', `public key for ${keyId} is ${publicKey.length} bytes, not 32`);
    this.keyId = keyId;
    this.publicKey = Buffer.from(publicKey);
    this.validUntilTs = validity?.validUntilTs;
    this.expiredTs = validity?.expiredTs;
  }

  static fromBase64(keyId: string, publicKeyBase64: string, validity?: { validUntilTs?: number; expiredTs?: number }): VerifyKey {
    let bytes: Buffer;
    try {
      bytes = decodeBase64(publicKeyBase64);
    } catch {
      throw new SigningKeyError('invalid_public_key', `public key for ${keyId} is not base64: ${JSON.stringify(publicKeyBase64)}`);
    }
    return new VerifyKey(keyId, bytes, validity);
  }

  get publicKeyBase64(): string {
    return encodeUnpaddedBase64(this.publicKey);
  }

  /** Whether the key may be used for something signed at `ts` (ms): before expiry and within `valid_until_ts`. */
  isValidAt(ts: number): boolean {
    if (this.expiredTs !== undefined && ts >= this.expiredTs) return false;
    if (this.validUntilTs !== undefined && ts > this.validUntilTs) return false;
    return true;
  }

  verify(message: Uint8Array, signature: Uint8Array): boolean {
    this.keyObject ??= publicKeyObject(this.publicKey);
    return ed25519Verify(this.keyObject, message, signature);
  }
}

/** A private ed25519 signing key and its version. */
export class SigningKey {
  readonly version: string;
  readonly keyId: string;
  readonly publicKey: Buffer;
  readonly #seed: Buffer;
  readonly #privateKey: KeyObject;

  constructor(version: string, seed: Uint8Array) {
    this.keyId = formatKeyId(version);
    this.version = version;
    if (seed.length !== ED25519_SEED_LENGTH) throw new SigningKeyError('invalid_seed', `seed for ${this.keyId} is ${seed.length} bytes, not 32`);
    this.#seed = Buffer.from(seed);
    this.#privateKey = privateKeyObjectFromSeed(this.#seed);
    this.publicKey = publicKeyFromSeed(this.#seed);
  }

  get publicKeyBase64(): string {
    return encodeUnpaddedBase64(this.publicKey);
  }

  /** The 32-byte private seed, for writing the key file. Handle with care. */
  exportSeed(): Buffer {
    return Buffer.from(this.#seed);
  }

  sign(message: Uint8Array): Buffer {
    return ed25519Sign(this.#privateKey, message);
  }

  verifyKey(validity?: { validUntilTs?: number; expiredTs?: number }): VerifyKey {
    return new VerifyKey(this.keyId, this.publicKey, validity);
  }

  /** Never print the seed by accident. */
  toJSON(): { keyId: string; publicKey: string } {
    return { keyId: this.keyId, publicKey: this.publicKeyBase64 };
  }
}

/** A new random key. The default version mimics Synapse's `a_` plus four random letters. */
export function generateSigningKey(version?: string): SigningKey {
  return new SigningKey(version ?? randomKeyVersion(), randomBytes(ED25519_SEED_LENGTH));
}

function randomKeyVersion(): string {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return 'a_' + [...randomBytes(4)].map((b) => letters[b % letters.length]).join('');
}

/** Parses a Synapse signing key file. Blank lines are skipped; anything else malformed is an error naming the line. */
export function parseSigningKeyFile(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    const where = `line ${index + 1}`;
    if (parts.length !== 3) throw new SigningKeyError('invalid_key_file', `${where}: expected "ed25519 <version> <base64 seed>", got ${parts.length} fields`);
    const [algorithm, version, seedBase64] = parts;
    if (algorithm !== ED25519) throw new SigningKeyError('unsupported_algorithm', `${where}: unsupported algorithm ${JSON.stringify(algorithm)}`);
    if (!KEY_VERSION.test(version)) throw new SigningKeyError('invalid_key_version', `${where}: key version ${JSON.stringify(version)} is outside [a-zA-Z0-9_]`);
    let seed: Buffer;
    try {
      seed = decodeBase64(seedBase64);
    } catch {
      throw new SigningKeyError('invalid_seed', `${where}: seed is not base64`);
    }
    if (seed.length !== ED25519_SEED_LENGTH) throw new SigningKeyError('invalid_seed', `${where}: seed is ${seed.length} bytes, not 32`);
    keys.push(new SigningKey(version, seed));
  });
  return keys;
}

export function serializeSigningKeyFile(keys: readonly SigningKey[]): string {
  return keys.map((k) => `${ED25519} ${k.version} ${encodeUnpaddedBase64(k.exportSeed())}\n`).join('');
}
