// Headers media is served with (client-server content repository, "Serving inline content"): inline
// only for types that cannot run script, the recommended sandboxing CSP, cross-origin readable.

/** The types the spec lists as safe to serve `inline`. */
const INLINE_TYPES = new Set([
  'text/css', 'text/plain', 'text/csv', 'application/json', 'application/ld+json',
  'image/jpeg', 'image/gif', 'image/png', 'image/apng', 'image/webp', 'image/avif',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
  'audio/mp4', 'audio/webm', 'audio/aac', 'audio/mpeg', 'audio/ogg', 'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/flac', 'audio/x-flac',
]);

export const MEDIA_CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

/** `image/png; charset=x` → `image/png`. */
export function essenceOf(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

export function isInlineSafe(contentType: string): boolean {
  return INLINE_TYPES.has(essenceOf(contentType));
}

/** RFC 6266 with an RFC 8187 `filename*` when the name is not plain printable ASCII. */
export function contentDisposition(contentType: string, fileName: string | null): string {
  const kind = isInlineSafe(contentType) ? 'inline' : 'attachment';
  if (!fileName) return kind;
  if (/^[\x20-\x7e]*$/.test(fileName) && !/["\\]/.test(fileName)) return `${kind}; filename="${fileName}"`;
  const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename*=utf-8''${encoded}`;
}

/** Every header a served media body carries. */
export function mediaResponseHeaders(contentType: string, fileName: string | null): Record<string, string> {
  return {
    'content-type': contentType,
    'content-disposition': contentDisposition(contentType, fileName),
    'content-security-policy': MEDIA_CONTENT_SECURITY_POLICY,
    'cross-origin-resource-policy': 'cross-origin',
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, max-age=86400, immutable',
  };
}

/** The file name a `Content-Disposition` names (`filename*` preferred), for remote media. */
export function fileNameFromDisposition(header: string | undefined): string | null {
  if (!header) return null;
  const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[2].trim());
    } catch {
      // fall through to the plain parameter
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return quoted[1].replace(/\\(.)/g, '$1');
  const token = /filename\s*=\s*([^;\s]+)/i.exec(header);
  return token ? token[1] : null;
}
