// Secrets never leave the process through logs, metric labels, audit records or error bodies. The
// client-server API takes `?access_token=`, application services authenticate with `as_token` and
// `hs_token`: whatever text carries them goes through `redactSecrets` first.

export const REDACTED = '[REDACTED]';

const SECRET_NAMES = 'access_token|as_token|hs_token|accessToken|asToken|hsToken|refresh_token|password|registration_shared_secret';
// `?access_token=abc&x=1`, also percent-encoded `access_token%3Dabc` inside a logged URL.
const QUERY_SECRET = new RegExp(`((?:^|[?&;\\s"'/]|%3F|%26)(?:${SECRET_NAMES})(?:=|%3D))[^&;\\s"'#%]*`, 'gi');
// `"as_token":"abc"` in JSON text (a log line, a serialised error).
const JSON_SECRET = new RegExp(`("(?:${SECRET_NAMES}|authorization)"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi');
// `Authorization: Bearer abc` wherever it is quoted.
const BEARER = /(\bBearer\s+)[A-Za-z0-9._~+/=-]+/gi;

/** The text with every token-like value replaced by `[REDACTED]`. */
export function redactSecrets(text: string): string {
  return text.replace(QUERY_SECRET, `$1${REDACTED}`).replace(JSON_SECRET, `$1"${REDACTED}"`).replace(BEARER, `$1${REDACTED}`);
}

/** A URL for a log line or an audit record: the path and the query string with secrets redacted. */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}
