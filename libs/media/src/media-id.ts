// Media IDs and mxc:// URIs, sanitised as the spec requires before any of it reaches a path or a URL.
import { randomBytes } from 'node:crypto';
import { MatrixError } from '@fedgate/service-kit';
import { parseServerName } from '@fedgate/protocol';

const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function isValidMediaId(mediaId: string): boolean {
  return MEDIA_ID.test(mediaId);
}

/** 24 random alphanumerics (~143 bits). */
export function newMediaId(): string {
  const bytes = randomBytes(24);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length];
  return id;
}

export function mxcUri(serverName: string, mediaId: string): string {
  return `mxc://${serverName}/${mediaId}`;
}

/** Path parameters of a media request, or 400 M_INVALID_PARAM / 404 M_NOT_FOUND. */
export function checkMediaAddress(serverName: string, mediaId: string): void {
  try {
    parseServerName(serverName);
  } catch {
    throw MatrixError.invalidParam(`Invalid server name ${JSON.stringify(serverName)}`);
  }
  if (!isValidMediaId(mediaId)) throw MatrixError.notFound('Unknown media ID');
}
