// The identity service API calls a third-party invite needs: `hash_details` + `lookup` (is the address bound to
// a Matrix ID?) and `store-invite` (the token and keys of the m.room.third_party_invite). Every answer is
// checked before it is used: an identity server that is down, slow, refusing or lying ends in an
// IdentityServerError, never in a half-made invite.
import { createHash } from 'node:crypto';
import { parseUserId } from '@fedgate/protocol';
import { isObject } from '@fedgate/room-state';

/** Largest answer read from an identity server. */
export const MAX_IDENTITY_ANSWER_BYTES = 64 * 1024;
/** Longest token accepted as the state key of the m.room.third_party_invite. */
export const MAX_INVITE_TOKEN_LENGTH = 255;

export type IdentityServerFailure = 'unreachable' | 'refused' | 'invalid_answer';

export class IdentityServerError extends Error {
  constructor(
    readonly failure: IdentityServerFailure,
    message: string,
    /** The identity server's own status and errcode, when it answered with an error. */
    readonly upstream?: { status: number; errcode?: string },
  ) {
    super(message);
    this.name = 'IdentityServerError';
  }
}

export interface StoreInviteRequest {
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  room_alias?: string;
  room_avatar_url?: string;
  room_join_rules?: string;
  room_name?: string;
  room_type?: string;
  sender_display_name?: string;
  sender_avatar_url?: string;
}

export interface StoredInvite {
  token: string;
  displayName: string;
  publicKeys: { public_key: string; key_validity_url: string }[];
}

/** Unpadded base64 (standard or URL-safe) of a 32-byte Ed25519 key. */
function isEd25519PublicKey(value: unknown): value is string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]{43}$/.test(value)) return false;
  return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64').length === 32;
}

function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 2048) return false;
  try {
    const parsed = new URL(value);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:';
  } catch {
    return false;
  }
}

/** The lookup key of an address for the `sha256` algorithm: sha256 of `<address> <medium> <pepper>`, URL-safe unpadded base64. */
export function hashedLookupAddress(address: string, medium: string, pepper: string): string {
  return createHash('sha256').update(`${address} ${medium} ${pepper}`, 'utf8').digest('base64url');
}

export class IdentityServerClient {
  constructor(
    /** What the client named (`id_server`), for messages. */
    readonly serverName: string,
    private readonly baseUrl: string,
    private readonly accessToken: string,
    private readonly timeoutMs: number,
  ) {}

  /** The Matrix ID bound to the address, or undefined when it is bound to none. */
  async lookup(medium: string, address: string): Promise<string | undefined> {
    const details = await this.call('GET', '/_matrix/identity/v2/hash_details');
    if (!isObject(details) || !Array.isArray(details.algorithms)) throw this.invalid('hash_details has no algorithms');
    const algorithms = details.algorithms;
    let request: { addresses: string[]; algorithm: string; pepper: string };
    if (algorithms.includes('sha256')) {
      if (typeof details.lookup_pepper !== 'string' || details.lookup_pepper === '') throw this.invalid('hash_details has no lookup_pepper');
      request = { addresses: [hashedLookupAddress(address, medium, details.lookup_pepper)], algorithm: 'sha256', pepper: details.lookup_pepper };
    } else if (algorithms.includes('none')) {
      request = { addresses: [`${address} ${medium}`], algorithm: 'none', pepper: typeof details.lookup_pepper === 'string' ? details.lookup_pepper : '' };
    } else {
      throw this.invalid('offers neither the sha256 nor the none lookup algorithm');
    }
    const answer = await this.call('POST', '/_matrix/identity/v2/lookup', request);
    if (!isObject(answer) || !isObject(answer.mappings)) throw this.invalid('lookup answer has no mappings');
    // Only the key asked for counts: mappings of other addresses are ignored.
    const key = request.addresses[0];
    if (!Object.prototype.hasOwnProperty.call(answer.mappings, key)) return undefined;
    const mxid = answer.mappings[key];
    try {
      if (typeof mxid === 'string' && parseUserId(mxid)) return mxid;
    } catch {
      // answered below
    }
    throw this.invalid('lookup mapped the address to something that is not a user ID');
  }

  async storeInvite(request: StoreInviteRequest): Promise<StoredInvite> {
    const answer = await this.call('POST', '/_matrix/identity/v2/store-invite', request);
    if (!isObject(answer)) throw this.invalid('store-invite answer is not an object');
    const { token, display_name: displayName, public_keys: publicKeys } = answer;
    if (typeof token !== 'string' || token === '' || token.length > MAX_INVITE_TOKEN_LENGTH) throw this.invalid('store-invite answer has no usable token');
    if (typeof displayName !== 'string' || displayName.length > 1024) throw this.invalid('store-invite answer has no display_name');
    if (!Array.isArray(publicKeys) || publicKeys.length === 0 || publicKeys.length > 10) throw this.invalid('store-invite answer has no public_keys');
    const keys = publicKeys.map((entry) => {
      if (!isObject(entry) || !isEd25519PublicKey(entry.public_key) || !isHttpUrl(entry.key_validity_url)) throw this.invalid('store-invite answer has a malformed public key');
      return { public_key: entry.public_key, key_validity_url: entry.key_validity_url };
    });
    return { token, displayName, publicKeys: keys };
  }

  private invalid(what: string): IdentityServerError {
    return new IdentityServerError('invalid_answer', `Identity server ${this.serverName}: ${what}`);
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    let text: string | undefined;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: { authorization: `Bearer ${this.accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await readBounded(response);
    } catch (error) {
      // A DOMException, not always an Error of this realm.
      const reason = (error as { name?: unknown } | null)?.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : 'unreachable';
      throw new IdentityServerError('unreachable', `Identity server ${this.serverName}: ${reason}`);
    }
    if (text === undefined) throw this.invalid(`${path} answer larger than ${MAX_IDENTITY_ANSWER_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
      if (response.ok) throw this.invalid(`${path} answer is not JSON`);
    }
    if (!response.ok) {
      const errcode = isObject(parsed) && typeof parsed.errcode === 'string' ? parsed.errcode.slice(0, 100) : undefined;
      throw new IdentityServerError('refused', `Identity server ${this.serverName} refused ${path} (${response.status}${errcode ? ` ${errcode}` : ''})`, { status: response.status, errcode });
    }
    return parsed;
  }
}

/** The answer's text, or undefined when it is larger than MAX_IDENTITY_ANSWER_BYTES (the rest is not read). */
async function readBounded(response: Response): Promise<string | undefined> {
  if (!response.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  // Leaving the loop early cancels the stream.
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_IDENTITY_ANSWER_BYTES) return undefined;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
