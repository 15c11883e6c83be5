/**
 * Every failure the federation client reports carries a machine-readable code, so egress
 * backoff can tell "the peer is down" from "the peer said no" from "we refused to go there".
 */
export type FederationErrorCode =
  /** Bad server name or delegated name (grammar). */
  | 'INVALID_SERVER_NAME'
  /** DNS answered with an error other than "no such record". */
  | 'DNS_FAILURE'
  /** No address could be connected to (refused, unreachable, reset, no A/AAAA records). */
  | 'UNREACHABLE'
  /** TLS handshake or certificate verification failed. */
  | 'TLS_FAILURE'
  /** Connect, headers or body took longer than allowed. */
  | 'TIMEOUT'
  /** The peer answered with a non-2xx status. */
  | 'HTTP_ERROR'
  /** Every address of the destination is forbidden by the address policy. */
  | 'ADDRESS_REFUSED'
  /** The response body exceeded the configured limit. */
  | 'RESPONSE_TOO_LARGE'
  /** A 2xx response whose body is not a JSON object. */
  | 'INVALID_RESPONSE';

export class FederationClientError extends Error {
  readonly code: FederationErrorCode;

  constructor(code: FederationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FederationClientError';
    this.code = code;
  }
}

/** A non-2xx answer; `errcode` is the Matrix error code when the body carried one. */
export class FederationHttpError extends FederationClientError {
  readonly status: number;
  readonly errcode: string | undefined;
  readonly body: unknown;

  constructor(status: number, body: unknown, destination: string) {
    const errcode = matrixErrcode(body);
    super('HTTP_ERROR', `${destination} answered ${status}${errcode ? ` ${errcode}` : ''}`);
    this.name = 'FederationHttpError';
    this.status = status;
    this.errcode = errcode;
    this.body = body;
  }
}

function matrixErrcode(body: unknown): string | undefined {
  if (body !== null && typeof body === 'object' && typeof (body as { errcode?: unknown }).errcode === 'string') {
    return (body as { errcode: string }).errcode;
  }
  return undefined;
}

export function isFederationClientError(error: unknown): error is FederationClientError {
  return error instanceof FederationClientError;
}
