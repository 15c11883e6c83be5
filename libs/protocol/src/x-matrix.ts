// The X-Matrix Authorization scheme for federation requests (server-server API "Request Authentication").
// Request bodies may carry events of v1–5 rooms, so the signed JSON uses lenient canonical numbers.
import { encodeUnpaddedBase64 } from './base64';
import { ProtocolError } from './errors';
import { isValidServerName } from './identifiers';
import { signedJsonBytes, SignatureVerificationError, verifyJsonSignature, type VerifyKeyLookup } from './json-signing';
import { isEd25519KeyId, type SigningKey } from './signing-key';

export class XMatrixAuthError extends ProtocolError {
  /** Every failure is answered with 401. */
  readonly errcode = 'M_UNAUTHORIZED';
}

export interface XMatrixRequest {
  method: string;
  /** Path and query as sent, starting with `/_matrix/`. */
  uri: string;
  origin: string;
  destination: string;
  /** The parsed JSON body, if the request has one. */
  content?: unknown;
}

export interface XMatrixCredentials {
  origin: string;
  /** Absent from old servers' headers. */
  destination?: string;
  key: string;
  sig: string;
}

function requestJson(request: XMatrixRequest): Record<string, unknown> {
  const json: Record<string, unknown> = { method: request.method, uri: request.uri, origin: request.origin, destination: request.destination };
  if (request.content !== undefined) json.content = request.content;
  return json;
}

/** Signs a request and returns the Authorization header value (lower-case names, quoted values, no extra spaces). */
export function buildXMatrixHeader(request: XMatrixRequest, key: SigningKey): string {
  const sig = encodeUnpaddedBase64(key.sign(signedJsonBytes(requestJson(request), { strict: false })));
  const quote = (v: string) => `"${v.replace(/["\\]/g, '\\$&')}"`;
  return `X-Matrix origin=${quote(request.origin)},destination=${quote(request.destination)},key=${quote(key.keyId)},sig=${quote(sig)}`;
}

const TOKEN_OR_COLON = /[!#$%&'*+.^_`|~0-9A-Za-z:-]/;

/**
 * Parses `X-Matrix name=value, …`: names case-insensitive, values quoted (with backslash escapes) or bare
 * tokens (colons allowed, for old servers), any order, unknown parameters ignored.
 */
export function parseXMatrixHeader(header: string): XMatrixCredentials {
  const fail = (reason: string) => new XMatrixAuthError('bad_header', `bad X-Matrix Authorization header: ${reason}`);
  if (typeof header !== 'string') throw fail('missing');
  const scheme = /^X-Matrix +/i.exec(header);
  if (!scheme) throw fail('scheme is not X-Matrix');
  const params = new Map<string, string>();
  let i = scheme[0].length;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  while (i < n) {
    skipSpace();
    const nameStart = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i])) i++;
    const name = header.slice(nameStart, i).toLowerCase();
    if (name === '') throw fail(`expected a parameter name at position ${i}`);
    skipSpace();
    if (header[i] !== '=') throw fail(`expected "=" after ${name}`);
    i++;
    skipSpace();
    let value = '';
    if (header[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw fail(`unterminated quoted value for ${name}`);
        const c = header[i++];
        if (c === '"') break;
        if (c === '\\') {
          if (i >= n) throw fail(`dangling backslash in ${name}`);
          value += header[i++];
        } else value += c;
      }
    } else {
      const start = i;
      while (i < n && TOKEN_OR_COLON.test(header[i])) i++;
      value = header.slice(start, i);
      if (value === '') throw fail(`empty value for ${name}`);
    }
    if (params.has(name)) throw fail(`parameter ${name} given twice`);
    params.set(name, value);
    skipSpace();
    if (i < n) {
      if (header[i] !== ',') throw fail(`expected "," at position ${i}`);
      i++;
    }
  }
  const origin = params.get('origin');
  const key = params.get('key');
  const sig = params.get('sig') ?? params.get('signature');
  if (origin === undefined) throw fail('no origin');
  if (key === undefined) throw fail('no key');
  if (sig === undefined) throw fail('no sig');
  if (!isValidServerName(origin)) throw fail(`origin ${JSON.stringify(origin)} is not a server name`);
  const destination = params.get('destination');
  if (destination !== undefined && !isValidServerName(destination)) throw fail(`destination ${JSON.stringify(destination)} is not a server name`);
  if (!isEd25519KeyId(key)) throw fail(`key ${JSON.stringify(key)} is not an ed25519 key ID`);
  return destination === undefined ? { origin, key, sig } : { origin, destination, key, sig };
}

export interface IncomingRequest {
  method: string;
  uri: string;
  content?: unknown;
  /** The Authorization header value. */
  authorization: string | undefined;
}

export interface VerifyXMatrixOptions {
  /** Our own server name: the header's destination must match it, and it is the signed destination when absent. */
  serverName: string;
  /** When given, the origin's key must be valid at this time (ms). */
  nowTs?: number;
}

/** Verifies an incoming federation request; returns the authenticated origin and key ID or throws XMatrixAuthError. */
export function verifyXMatrixRequest(request: IncomingRequest, lookup: VerifyKeyLookup, options: VerifyXMatrixOptions): { origin: string; keyId: string } {
  if (!request.authorization) throw new XMatrixAuthError('missing_header', 'request has no Authorization header');
  const credentials = parseXMatrixHeader(request.authorization);
  if (credentials.destination !== undefined && credentials.destination !== options.serverName) {
    throw new XMatrixAuthError('wrong_destination', `request is for ${credentials.destination}, not ${options.serverName}`);
  }
  const signed = {
    ...requestJson({ method: request.method, uri: request.uri, origin: credentials.origin, destination: credentials.destination ?? options.serverName, content: request.content }),
    signatures: { [credentials.origin]: { [credentials.key]: credentials.sig } },
  };
  try {
    verifyJsonSignature(signed, credentials.origin, lookup, { validAtTs: options.nowTs, strict: false });
  } catch (e) {
    if (e instanceof SignatureVerificationError) {
      throw new XMatrixAuthError(e.problem === 'bad_signature' ? 'bad_signature' : 'unknown_key', `X-Matrix from ${credentials.origin} with ${credentials.key}: ${e.message}`);
    }
    throw e;
  }
  return { origin: credentials.origin, keyId: credentials.key };
}
