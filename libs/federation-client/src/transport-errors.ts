import { FederationClientError } from './errors';

const TLS_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'EPROTO',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && depth < 4; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** Maps a socket/TLS/undici failure onto the client's error codes. */
export function classifyTransportError(error: unknown, where: string, timedOut: boolean): FederationClientError {
  if (error instanceof FederationClientError) return error;
  const codes = errorCodes(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (timedOut || codes.some((code) => TIMEOUT_CODES.has(code))) {
    return new FederationClientError('TIMEOUT', `${where}: timed out (${detail})`, { cause: error });
  }
  if (codes.some((code) => TLS_ERROR_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'))) {
    return new FederationClientError('TLS_FAILURE', `${where}: TLS failure (${detail})`, { cause: error });
  }
  return new FederationClientError('UNREACHABLE', `${where}: ${detail}`, { cause: error });
}
