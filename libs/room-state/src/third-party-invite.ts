// Rule "any signature in `signed` matches any public key in the m.room.third_party_invite event".
import nacl from 'tweetnacl';
import { isObject, type RoomEvent } from './event';

/** Canonical JSON for the small `signed` objects of third-party invites (objects, arrays, strings, integers). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(canonical).join(',') + ']';
  if (isObject(value)) {
    return '{' + Object.keys(value).sort().map((k) => JSON.stringify(k) + ':' + canonical(value[k])).join(',') + '}';
  }
  return JSON.stringify(value);
}

function decodeBase64(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(s)) return undefined;
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function thirdPartyInvitePublicKeys(invite: RoomEvent): string[] {
  const keys: string[] = [];
  if (typeof invite.content.public_key === 'string') keys.push(invite.content.public_key);
  if (Array.isArray(invite.content.public_keys)) {
    for (const k of invite.content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

/** Ed25519 check of `signed` (without its `signatures`) against each public key. */
export function verifyThirdPartyInviteSignature(signed: Record<string, unknown>, publicKeys: readonly string[]): boolean {
  const signatures = signed.signatures;
  if (!isObject(signatures)) return false;
  const { signatures: _s, unsigned: _u, ...rest } = signed;
  const message = new TextEncoder().encode(canonical(rest));
  const keys = publicKeys.map(decodeBase64).filter((k): k is Uint8Array => k?.length === nacl.sign.publicKeyLength);
  for (const byKey of Object.values(signatures)) {
    if (!isObject(byKey)) continue;
    for (const sig of Object.values(byKey)) {
      if (typeof sig !== 'string') continue;
      const bytes = decodeBase64(sig);
      if (bytes?.length !== nacl.sign.signatureLength) continue;
      if (keys.some((key) => nacl.sign.detached.verify(message, bytes, key))) return true;
    }
  }
  return false;
}
