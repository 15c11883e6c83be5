// Ed25519 on node:crypto (OpenSSL). Raw 32-byte keys become KeyObjects through fixed DER prefixes
// (PKCS#8 for the seed, SPKI for the public key); building a KeyObject costs far more than a verify, so
// public keys are cached by their bytes.
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

export function privateKeyObjectFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ED25519_SEED_LENGTH) throw new RangeError(`an ed25519 seed is 32 bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function publicKeyFromSeed(seed: Uint8Array): Buffer {
  const spki = createPublicKey(privateKeyObjectFromSeed(seed)).export({ format: 'der', type: 'spki' });
  return spki.subarray(SPKI_ED25519_PREFIX.length);
}

const PUBLIC_KEY_CACHE_LIMIT = 10_000;
const publicKeyCache = new Map<string, KeyObject>();

/** A KeyObject for a raw 32-byte public key, cached (keyed by its bytes) so repeat verifies skip DER parsing. */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new RangeError(`an ed25519 public key is 32 bytes, got ${publicKey.length}`);
  const cacheKey = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
  let key = publicKeyCache.get(cacheKey);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeyCache.delete(publicKeyCache.keys().next().value!);
    publicKeyCache.set(cacheKey, key);
  }
  return key;
}

export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Buffer {
  return cryptoSign(null, message, privateKey);
}

export function ed25519Verify(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  return cryptoVerify(null, message, publicKey, signature);
}
