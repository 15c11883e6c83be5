// Signing JSON objects (appendix "Signing JSON"): the signed bytes are the canonical JSON of the object
// without `signatures` and `unsigned`; signatures live under signatures[entity][keyId].
import { decodeBase64, encodeUnpaddedBase64 } from './base64';
import { canonicalJson } from './canonical-json';
import { ProtocolError } from './errors';
import type { Signatures } from './pdu';
import { isEd25519KeyId, type SigningKey, type VerifyKey } from './signing-key';

export type SignatureProblem = 'not_an_object' | 'missing_signature' | 'no_known_key' | 'bad_signature';

export class SignatureVerificationError extends ProtocolError {
  readonly errcode = 'M_FORBIDDEN';
  constructor(
    readonly problem: SignatureProblem,
    readonly serverName: string,
    detail: string,
    readonly keyId?: string,
  ) {
    super(problem, detail);
  }
}

/** Finds a server's public key; return undefined when the key is not known. Keys are usually fetched before verifying. */
export type VerifyKeyLookup = (serverName: string, keyId: string) => VerifyKey | undefined;

export interface CanonicalOptions {
  /** Room versions 6+ canonical JSON rules (default true). Pass false for events of v1–5 rooms. */
  strict?: boolean;
}

/** The bytes a signature covers: canonical JSON without `signatures` and `unsigned`. */
export function signedJsonBytes(object: Record<string, unknown>, options?: CanonicalOptions): Buffer {
  return Buffer.from(signedJsonText(object, options), 'utf8');
}

export function signedJsonText(object: Record<string, unknown>, options?: CanonicalOptions): string {
  if ('signatures' in object || 'unsigned' in object) {
    const { signatures: _s, unsigned: _u, ...rest } = object;
    return canonicalJson(rest, options);
  }
  return canonicalJson(object, options);
}

/** Returns a copy of `object` with this server's signature added to any already there. */
export function signJson<T extends Record<string, unknown>>(object: T, serverName: string, key: SigningKey, options?: CanonicalOptions): T & { signatures: Signatures } {
  const signature = encodeUnpaddedBase64(key.sign(signedJsonBytes(object, options)));
  return { ...object, signatures: addSignature(object.signatures as Signatures | undefined, serverName, key.keyId, signature) };
}

export function addSignature(existing: Signatures | undefined, serverName: string, keyId: string, signature: string): Signatures {
  const signatures: Signatures = {};
  if (existing) for (const [server, sigs] of Object.entries(existing)) signatures[server] = { ...sigs };
  signatures[serverName] = { ...signatures[serverName], [keyId]: signature };
  return signatures;
}

export interface VerifyOptions extends CanonicalOptions {
  /** Skip keys not valid at this time (ms), e.g. the event's origin_server_ts. */
  validAtTs?: number;
  /** The signed bytes if the caller already has them (verifying several servers on one object). */
  signedBytes?: Uint8Array;
}

/**
 * Checks that `serverName` signed `object` (appendix "Checking for a Signature"): its ed25519 signatures with
 * keys the lookup knows (and, with `validAtTs`, valid then) must all verify, and there must be at least one.
 * Unknown algorithms, unknown keys and expired keys are skipped. Throws SignatureVerificationError;
 * returns the key IDs that verified.
 */
export function verifyJsonSignature(object: Record<string, unknown>, serverName: string, lookup: VerifyKeyLookup, options?: VerifyOptions): string[] {
  const all = object.signatures;
  if (all === null || typeof all !== 'object' || Array.isArray(all)) {
    throw new SignatureVerificationError('missing_signature', serverName, `object has no signatures (looking for ${serverName})`);
  }
  const mine = (all as Record<string, unknown>)[serverName];
  if (mine === null || typeof mine !== 'object' || Array.isArray(mine)) {
    throw new SignatureVerificationError('missing_signature', serverName, `no signature from ${serverName}`);
  }
  let bytes = options?.signedBytes;
  const verified: string[] = [];
  for (const keyId in mine as Record<string, unknown>) {
    if (!isEd25519KeyId(keyId)) continue;
    const key = lookup(serverName, keyId);
    if (!key) continue;
    if (options?.validAtTs !== undefined && !key.isValidAt(options.validAtTs)) continue;
    const encoded = (mine as Record<string, unknown>)[keyId];
    let signature: Buffer | undefined;
    try {
      signature = typeof encoded === 'string' ? decodeBase64(encoded) : undefined;
    } catch {
      signature = undefined;
    }
    bytes ??= signedJsonBytes(object, options);
    if (!signature || !key.verify(bytes, signature)) {
      throw new SignatureVerificationError('bad_signature', serverName, `signature by ${serverName} with ${keyId} does not verify`, keyId);
    }
    verified.push(keyId);
  }
  if (verified.length === 0) {
    throw new SignatureVerificationError('no_known_key', serverName, `no signature from ${serverName} by a known, valid ed25519 key`);
  }
  return verified;
}
