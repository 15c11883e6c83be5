// Unpadded base64 (RFC 4648 without "="), standard and URL-safe alphabets. Decoding accepts padded and
// unpadded input but nothing else: Buffer's own decoder silently skips invalid characters, which would let
// two different strings decode to the same bytes.
import { ProtocolError } from './errors';

export class Base64Error extends ProtocolError {
  readonly errcode = 'M_INVALID_PARAM';
  constructor(readonly value: string, alphabet: 'standard' | 'url-safe') {
    super('invalid_base64', `not ${alphabet} base64: ${JSON.stringify(value.length > 64 ? value.slice(0, 61) + '...' : value)}`);
  }
}

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  const s = toBuffer(bytes).toString('base64');
  return s.endsWith('==') ? s.slice(0, -2) : s.endsWith('=') ? s.slice(0, -1) : s;
}

export function encodeUrlSafeUnpaddedBase64(bytes: Uint8Array): string {
  return toBuffer(bytes).toString('base64url');
}

/** Decodes standard base64, padded or not. */
export function decodeBase64(value: string): Buffer {
  if (!isWellFormedBase64(value, STANDARD)) throw new Base64Error(value, 'standard');
  return Buffer.from(value, 'base64');
}

/** Decodes URL-safe base64, padded or not. */
export function decodeUrlSafeBase64(value: string): Buffer {
  if (!isWellFormedBase64(value, URL_SAFE)) throw new Base64Error(value, 'url-safe');
  return Buffer.from(value, 'base64url');
}

function isWellFormedBase64(value: string, alphabet: RegExp): boolean {
  if (typeof value !== 'string' || !alphabet.test(value)) return false;
  const pad = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  const dataLength = value.length - pad;
  // One leftover character cannot carry a whole byte; padding, when present, must complete the quartet.
  if (dataLength % 4 === 1) return false;
  return pad === 0 || value.length % 4 === 0;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
