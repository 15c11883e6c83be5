// Server key documents (`GET /_matrix/key/v2/server`): building and signing ours, verifying others'.
import { ProtocolError } from './errors';
import { isValidServerName } from './identifiers';
import { signJson, SignatureVerificationError, verifyJsonSignature } from './json-signing';
import type { JsonObject, Signatures } from './pdu';
import { isEd25519KeyId, SigningKey, VerifyKey } from './signing-key';

export class ServerKeyDocumentError extends ProtocolError {
  readonly errcode = 'M_UNAUTHORIZED';
}

export interface ServerKeyDocument {
  server_name: string;
  valid_until_ts: number;
  verify_keys: Record<string, { key: string }>;
  old_verify_keys: Record<string, { key: string; expired_ts: number }>;
  signatures: Signatures;
  [key: string]: unknown;
}

export interface OldVerifyKey {
  keyId: string;
  /** Unpadded base64 public key. */
  key: string;
  expiredTs: number;
}

/** Builds our key document, signed by every current key. */
export function buildServerKeyDocument(params: { serverName: string; keys: readonly SigningKey[]; validUntilTs: number; oldVerifyKeys?: readonly OldVerifyKey[] }): ServerKeyDocument {
  if (params.keys.length === 0) throw new ServerKeyDocumentError('no_keys', 'a key document needs at least one current key');
  const verify_keys: Record<string, { key: string }> = {};
  for (const k of params.keys) verify_keys[k.keyId] = { key: k.publicKeyBase64 };
  const old_verify_keys: Record<string, { key: string; expired_ts: number }> = {};
  for (const k of params.oldVerifyKeys ?? []) old_verify_keys[k.keyId] = { key: k.key, expired_ts: k.expiredTs };
  let doc: Record<string, unknown> = { server_name: params.serverName, valid_until_ts: params.validUntilTs, verify_keys, old_verify_keys };
  for (const k of params.keys) doc = signJson(doc, params.serverName, k);
  return doc as ServerKeyDocument;
}

/** What a verified key document says: current keys (bounded by valid_until_ts) and old keys (bounded by expired_ts). */
export interface ServerKeys {
  serverName: string;
  validUntilTs: number;
  verifyKeys: Map<string, VerifyKey>;
  oldVerifyKeys: Map<string, VerifyKey>;
}

export const MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

export interface VerifyServerKeyDocumentOptions {
  /** The server we asked; the document must name it. */
  serverName?: string;
  /**
   * When the document was fetched (ms). Keys are then trusted only up to the lesser of valid_until_ts and
   * 7 days after it, as the spec requires. Without it, valid_until_ts is taken as is.
   */
  fetchedAtTs?: number;
}

/**
 * Checks a key document's shape and its self-signature: at least one listed verify key signed it and every
 * signature by a listed key verifies. Throws ServerKeyDocumentError.
 */
export function verifyServerKeyDocument(doc: unknown, options?: VerifyServerKeyDocumentOptions): ServerKeys {
  const fail = (code: string, reason: string) => new ServerKeyDocumentError(code, `server key document: ${reason}`);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw fail('bad_document', 'not an object');
  const d = doc as JsonObject;
  const serverName = d.server_name;
  if (typeof serverName !== 'string' || !isValidServerName(serverName)) throw fail('bad_document', `server_name ${JSON.stringify(serverName)} is not a server name`);
  if (options?.serverName !== undefined && serverName !== options.serverName) throw fail('wrong_server', `is for ${serverName}, expected ${options.serverName}`);
  const validUntil = d.valid_until_ts;
  if (typeof validUntil !== 'number' || !Number.isSafeInteger(validUntil)) throw fail('bad_document', `valid_until_ts ${JSON.stringify(validUntil)} is not an integer`);
  const effectiveValidUntil = options?.fetchedAtTs === undefined ? validUntil : Math.min(validUntil, options.fetchedAtTs + MAX_KEY_VALIDITY_MS);

  const verifyKeys = new Map<string, VerifyKey>();
  for (const [keyId, entry] of Object.entries(objectField(d, 'verify_keys', true, fail))) {
    if (!isEd25519KeyId(keyId)) continue;
    verifyKeys.set(keyId, parseKey(keyId, entry, { validUntilTs: effectiveValidUntil }, fail));
  }
  if (verifyKeys.size === 0) throw fail('no_keys', 'no ed25519 verify_keys');
  const oldVerifyKeys = new Map<string, VerifyKey>();
  for (const [keyId, entry] of Object.entries(objectField(d, 'old_verify_keys', false, fail))) {
    if (!isEd25519KeyId(keyId)) continue;
    const expired = (entry as JsonObject | null)?.expired_ts;
    if (typeof expired !== 'number' || !Number.isSafeInteger(expired)) throw fail('bad_document', `old_verify_keys[${keyId}].expired_ts is not an integer`);
    oldVerifyKeys.set(keyId, parseKey(keyId, entry, { expiredTs: expired }, fail));
  }
  try {
    verifyJsonSignature(d, serverName, (server, keyId) => (server === serverName ? verifyKeys.get(keyId) : undefined));
  } catch (e) {
    if (e instanceof SignatureVerificationError) throw fail(e.problem === 'bad_signature' ? 'bad_signature' : 'not_self_signed', e.message);
    throw e;
  }
  return { serverName, validUntilTs: effectiveValidUntil, verifyKeys, oldVerifyKeys };
}

function objectField(d: JsonObject, field: string, required: boolean, fail: (code: string, reason: string) => Error): JsonObject {
  const value = d[field];
  if (value === undefined && !required) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail('bad_document', `${field} is not an object`);
  return value;
}

function parseKey(keyId: string, entry: unknown, validity: { validUntilTs?: number; expiredTs?: number }, fail: (code: string, reason: string) => Error): VerifyKey {
  const key = (entry as JsonObject | null)?.key;
  if (typeof key !== 'string') throw fail('bad_document', `${keyId} has no key`);
  try {
    return VerifyKey.fromBase64(keyId, key, validity);
  } catch (e) {
    throw fail('bad_document', (e as Error).message);
  }
}

/** Whether `keyId` from these keys may be trusted for something signed at `ts`. Old keys count before their expiry. */
export function isKeyValidAt(keys: ServerKeys, keyId: string, ts: number): boolean {
  const key = keys.verifyKeys.get(keyId) ?? keys.oldVerifyKeys.get(keyId);
  return key !== undefined && key.isValidAt(ts);
}

/** A lookup over verified key documents, for verifyEventSignatures and friends. */
export function lookupFromServerKeys(all: Iterable<ServerKeys>): (serverName: string, keyId: string) => VerifyKey | undefined {
  const byServer = new Map<string, ServerKeys>();
  for (const k of all) byServer.set(k.serverName, k);
  return (serverName, keyId) => {
    const keys = byServer.get(serverName);
    return keys?.verifyKeys.get(keyId) ?? keys?.oldVerifyKeys.get(keyId);
  };
}
