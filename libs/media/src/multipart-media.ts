// The federation media answer (server-server "Content Repository"): multipart/mixed with exactly two
// parts, JSON metadata first, then the bytes (with their Content-Type and Content-Disposition) or a
// Location header saying where to fetch them. Bodies are whole buffers here, already size-limited.
import { randomBytes } from 'node:crypto';

export interface MediaPart {
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
}

export type FederationMediaContent =
  | { kind: 'bytes'; contentType: string; contentDisposition: string | null; body: Buffer; metadata: Record<string, unknown> }
  | { kind: 'location'; location: string; metadata: Record<string, unknown> };

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

const CRLF = '\r\n';

export function buildMultipartMixed(metadata: Record<string, unknown>, second: { contentType: string; contentDisposition?: string; body: Buffer } | { location: string }): { contentType: string; body: Buffer } {
  const boundary = randomBytes(16).toString('hex');
  const secondHeaders =
    'location' in second
      ? `Location: ${second.location}${CRLF}`
      : `Content-Type: ${second.contentType}${CRLF}${second.contentDisposition ? `Content-Disposition: ${second.contentDisposition}${CRLF}` : ''}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}${CRLF}Content-Type: application/json${CRLF}${CRLF}${JSON.stringify(metadata)}${CRLF}--${boundary}${CRLF}${secondHeaders}${CRLF}`, 'utf8'),
    'location' in second ? Buffer.alloc(0) : second.body,
    Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'utf8'),
  ]);
  return { contentType: `multipart/mixed; boundary=${boundary}`, body };
}

/** The `boundary` parameter of a multipart Content-Type (RFC 2046: 1–70 characters, maybe quoted). */
export function multipartBoundary(contentType: string | undefined): string {
  if (!contentType || !/^\s*multipart\/mixed\s*(;|$)/i.test(contentType)) throw new MultipartError(`expected multipart/mixed, got ${JSON.stringify(contentType ?? '')}`);
  const match = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new MultipartError('multipart/mixed without a usable boundary');
  return boundary;
}

/** Splits a multipart body into its parts (preamble and epilogue ignored); at most `maxParts`. */
export function parseMultipart(body: Buffer, boundary: string, maxParts = 8): MediaPart[] {
  const delimiter = Buffer.from(`--${boundary}`, 'utf8');
  let position = body.indexOf(delimiter);
  if (position === -1) throw new MultipartError('no boundary in body');
  const parts: MediaPart[] = [];
  for (;;) {
    position += delimiter.length;
    if (body.subarray(position, position + 2).toString('latin1') === '--') return parts; // close delimiter
    // Transport padding (spaces/tabs), then CRLF, begins the part.
    while (body[position] === 0x20 || body[position] === 0x09) position++;
    if (body.subarray(position, position + 2).toString('latin1') !== CRLF) throw new MultipartError('boundary not followed by CRLF');
    position += 2;
    const next = body.indexOf(Buffer.from(`${CRLF}--${boundary}`, 'utf8'), position);
    if (next === -1) throw new MultipartError('part without a closing boundary');
    if (parts.length === maxParts) throw new MultipartError(`more than ${maxParts} parts`);
    parts.push(parsePart(body.subarray(position, next)));
    position = next + 2;
  }
}

function parsePart(part: Buffer): MediaPart {
  const headers: Record<string, string> = {};
  // A part with no headers starts with the blank line directly.
  const end = part.subarray(0, 2).toString('latin1') === CRLF ? 0 : part.indexOf(`${CRLF}${CRLF}`);
  if (end === -1) throw new MultipartError('part headers not terminated');
  const headerText = part.subarray(0, end).toString('latin1');
  if (headerText.length > 16 * 1024) throw new MultipartError('part headers too long');
  for (const line of headerText.split(CRLF)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError(`malformed part header ${JSON.stringify(line.slice(0, 80))}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: part.subarray(end === 0 ? 2 : end + 4) };
}

/** A federation media response: metadata part, then bytes or a Location. */
export function parseFederationMedia(contentType: string | undefined, body: Buffer): FederationMediaContent {
  const parts = parseMultipart(body, multipartBoundary(contentType));
  if (parts.length !== 2) throw new MultipartError(`expected 2 parts, got ${parts.length}`);
  const [meta, content] = parts;
  let metadata: unknown;
  try {
    metadata = JSON.parse(meta.body.toString('utf8'));
  } catch {
    throw new MultipartError('first part is not JSON');
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new MultipartError('first part is not a JSON object');
  const location = content.headers['location'];
  if (location) return { kind: 'location', location, metadata: metadata as Record<string, unknown> };
  return {
    kind: 'bytes',
    contentType: content.headers['content-type'] || 'application/octet-stream',
    contentDisposition: content.headers['content-disposition'] ?? null,
    body: content.body,
    metadata: metadata as Record<string, unknown>,
  };
}
