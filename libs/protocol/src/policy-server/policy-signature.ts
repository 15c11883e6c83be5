// Policy Servers (spec v1.18, server-server API "Policy Servers"): the wire shapes both sides share and the
// check of a policy server's signature on an event, made with the key the room names in `m.room.policy`
// (never a key fetched from the server: the room decides which key may recommend events).
import { decodeBase64, decodeUrlSafeBase64 } from '../base64';
import { redactedSigningText } from '../event-signing';
import { addSignature, verifyJsonSignature, SignatureVerificationError } from '../json-signing';
import { isObject, type Signatures } from '../pdu';
import { rulesOf } from '../redaction';
import type { RoomVersionRules } from '../room-versions';
import { VerifyKey } from '../signing-key';

export const POLICY_EVENT_TYPE = 'm.room.policy';
/** The only key ID a policy server signs events with (ed25519). */
export const POLICY_SERVER_KEY_ID = 'ed25519:policy_server';
export const POLICY_SIGN_PATH = '/_matrix/policy/v1/sign';
export const POLICY_SERVER_WELL_KNOWN_PATH = '/.well-known/matrix/policy_server';

type EventObject = Record<string, unknown>;

/**
 * The one event a policy server is never asked to sign: the `m.room.policy` state event with an empty state key
 * (so a room can always change or clear its policy server). A non-state or non-empty-state-key `m.room.policy` is signed.
 */
export function isExemptFromPolicyServer(event: { type?: unknown; state_key?: unknown }): boolean {
  return event.type === POLICY_EVENT_TYPE && event.state_key === '';
}

/**
 * The 32 raw bytes of a policy server's ed25519 key as rooms carry it: unpadded base64. The standard alphabet is
 * the spec's; the URL-safe one is accepted too, since the spec's own well-known example uses it.
 */
export function decodePolicyServerKey(publicKey: unknown): Buffer | undefined {
  if (typeof publicKey !== 'string') return undefined;
  for (const decode of [decodeBase64, decodeUrlSafeBase64]) {
    try {
      const bytes = decode(publicKey);
      if (bytes.length === 32) return bytes;
    } catch {
      // the other alphabet, or not base64 at all
    }
  }
  return undefined;
}

export type PolicySignatureCheck = { valid: true } | { valid: false; problem: 'unusable_key' | 'missing_signature' | 'bad_signature'; reason: string };

/**
 * Whether `via` signed the redacted event with `ed25519:policy_server` and the room's key. Other signatures of
 * `via` (its federation key, when it is also the sender's server) are not looked at.
 */
export function verifyPolicyServerSignature(event: EventObject, roomVersion: RoomVersionRules | string, via: string, publicKey: unknown): PolicySignatureCheck {
  const bytes = decodePolicyServerKey(publicKey);
  if (!bytes) return { valid: false, problem: 'unusable_key', reason: `the ed25519 key in ${POLICY_EVENT_TYPE} is not a 32-byte unpadded base64 key` };
  const signature = (event.signatures as Record<string, Record<string, unknown>> | undefined)?.[via]?.[POLICY_SERVER_KEY_ID];
  if (!isObject(event.signatures) || signature === undefined) return { valid: false, problem: 'missing_signature', reason: `no ${POLICY_SERVER_KEY_ID} signature from ${via}` };
  const key = new VerifyKey(POLICY_SERVER_KEY_ID, bytes);
  const rules = rulesOf(roomVersion);
  try {
    verifyJsonSignature({ signatures: { [via]: { [POLICY_SERVER_KEY_ID]: signature } } }, via, (server, keyId) => (server === via && keyId === POLICY_SERVER_KEY_ID ? key : undefined), {
      signedBytes: Buffer.from(redactedSigningText(event, rules), 'utf8'),
    });
    return { valid: true };
  } catch (err) {
    if (!(err instanceof SignatureVerificationError)) throw err;
    return { valid: false, problem: 'bad_signature', reason: `the ${POLICY_SERVER_KEY_ID} signature from ${via} does not verify with the room's key` };
  }
}

export type PolicySignResponse = { ok: true; signature: string } | { ok: false; reason: string };

/** The 200 answer of `POST /_matrix/policy/v1/sign`: `{ <via>: { "ed25519:policy_server": <signature> } }`. */
export function parsePolicySignResponse(body: unknown, via: string): PolicySignResponse {
  if (!isObject(body)) return { ok: false, reason: 'the answer is not a JSON object' };
  const mine = body[via];
  if (!isObject(mine)) return { ok: false, reason: `the answer holds no signatures of ${via}` };
  const signature = mine[POLICY_SERVER_KEY_ID];
  if (typeof signature !== 'string') return { ok: false, reason: `the answer holds no ${POLICY_SERVER_KEY_ID} signature of ${via}` };
  return { ok: true, signature };
}

/** The event with the policy server's signature added; every other signature kept. */
export function withPolicyServerSignature<T extends EventObject>(event: T, via: string, signature: string): T {
  return { ...event, signatures: addSignature(event.signatures as Signatures | undefined, via, POLICY_SERVER_KEY_ID, signature) };
}

/** What a signing request carries: the PDU as it will be sent (no `unsigned`, which is not signed and not the server's to share). */
export function policySignRequestBody(event: EventObject): EventObject {
  const { unsigned: _unsigned, ...pdu } = event;
  return pdu;
}

export type PolicyServerWellKnown = { ok: true; publicKeys: Record<string, string> & { ed25519: string } } | { ok: false; reason: string };

/** `GET /.well-known/matrix/policy_server`: `public_keys` with at least a usable `ed25519`. */
export function parsePolicyServerWellKnown(body: unknown): PolicyServerWellKnown {
  if (!isObject(body) || !isObject(body.public_keys)) return { ok: false, reason: 'no public_keys object' };
  const keys: Record<string, string> = {};
  for (const [algorithm, key] of Object.entries(body.public_keys)) if (typeof key === 'string') keys[algorithm] = key;
  if (decodePolicyServerKey(keys.ed25519) === undefined) return { ok: false, reason: 'public_keys.ed25519 is not a 32-byte unpadded base64 key' };
  return { ok: true, publicKeys: keys as Record<string, string> & { ed25519: string } };
}
