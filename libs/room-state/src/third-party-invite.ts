// Rule "any signature in `signed` matches any public key in the m.room.third_party_invite event".
import { decodeBase64, decodeUrlSafeBase64, ED25519_PUBLIC_KEY_LENGTH, ed25519Verify, publicKeyObject, signedJsonBytes } from '@fedgate/protocol';
import { isObject, type RoomEvent } from './event';

export function thirdPartyInvitePublicKeys(invite: RoomEvent): string[] {
  const keys: string[] = [];
  if (typeof invite.content.public_key === 'string') keys.push(invite.content.public_key);
  if (Array.isArray(invite.content.public_keys)) {
    for (const k of invite.content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

/** Identity servers publish keys in either base64 alphabet, so both are accepted; undefined when neither decodes. */
function decodeEitherBase64(value: string): Buffer | undefined {
  for (const decode of [decodeBase64, decodeUrlSafeBase64]) {
    try {
      return decode(value);
    } catch {
      // try the other alphabet
    }
  }
  return undefined;
}

/**
 * Ed25519 check of `signed` (canonical JSON without `signatures` and `unsigned`) against each public key.
 * The invite lists bare keys, not key IDs, so every signature is tried against every key. Numbers are
 * written leniently: the identity server signed this object, not the room, and a room version 6+ event
 * carrying a float here already fails canonical JSON as a whole.
 */
export function verifyThirdPartyInviteSignature(signed: Record<string, unknown>, publicKeys: readonly string[]): boolean {
  const signatures = signed.signatures;
  if (!isObject(signatures)) return false;
  const keys = publicKeys.map(decodeEitherBase64).filter((k): k is Buffer => k?.length === ED25519_PUBLIC_KEY_LENGTH).map(publicKeyObject);
  if (keys.length === 0) return false;
  let message: Buffer;
  try {
    message = signedJsonBytes(signed, { strict: false });
  } catch {
    return false; // not encodable as canonical JSON, so nothing can have signed it
  }
  for (const byKey of Object.values(signatures)) {
    if (!isObject(byKey)) continue;
    for (const encoded of Object.values(byKey)) {
      const signature = typeof encoded === 'string' ? decodeEitherBase64(encoded) : undefined;
      if (signature && keys.some((key) => ed25519Verify(key, message, signature))) return true;
    }
  }
  return false;
}
