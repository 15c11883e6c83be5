// `/keys/signatures/upload`: a user signs a key already published (their own device with their
// self-signing key, their own master key with one of their devices, another user's master key with their
// user-signing key). The signed object must be the published one, unchanged but for signatures, and the
// new signature must verify; only that signature is added to what is kept.
import { canonicalJson } from './canonical-json';
import { isObject } from './pdu';
import { checkSignedBy, DeviceKeyError, publishedKey, type PublishedKey } from './device-keys';

/** The one ed25519 key a cross-signing key object holds (its ID is `ed25519:<the key>`), if well formed. */
export function crossSigningKeyOf(key: Record<string, unknown> | null | undefined): PublishedKey | undefined {
  const entries = isObject(key?.keys) ? Object.entries(key.keys) : [];
  if (entries.length !== 1 || typeof entries[0]![1] !== 'string') return undefined;
  try {
    return publishedKey(entries[0]![0], entries[0]![1]);
  } catch {
    return undefined;
  }
}

const withoutSignatures = (object: Record<string, unknown>): string => {
  const { signatures: _signatures, unsigned: _unsigned, ...rest } = object;
  return canonicalJson(rest);
};

/**
 * Checks `submitted` against the `published` object and `signer`'s signature on it (by `signerUserId`);
 * returns `published` with that one signature added.
 */
export function addCheckedSignature(published: Record<string, unknown>, submitted: unknown, signerUserId: string, signer: PublishedKey): Record<string, unknown> {
  if (!isObject(submitted)) throw new DeviceKeyError('M_INVALID_PARAM', 'bad_keys', 'the signed object must be a JSON object');
  if (withoutSignatures(submitted) !== withoutSignatures(published)) throw new DeviceKeyError('M_INVALID_PARAM', 'bad_keys', 'the signed object differs from the published key');
  const { unsigned: _unsigned, ...signed } = submitted;
  checkSignedBy(signed, signerUserId, signer, 'the signed object');
  const signature = ((submitted.signatures as Record<string, Record<string, string>>)[signerUserId] as Record<string, string>)[signer.keyId]!;
  const signatures = isObject(published.signatures) ? (published.signatures as Record<string, Record<string, string>>) : {};
  return { ...published, signatures: { ...signatures, [signerUserId]: { ...signatures[signerUserId], [signer.keyId]: signature } } };
}
