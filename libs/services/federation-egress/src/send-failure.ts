import { isFederationClientError, FederationHttpError } from '@fedgate/federation-client';

export interface SendFailure {
  /** Retry the same transaction after backing off, or give it up (recorded with the reason). */
  retry: boolean;
  /** HTTP status, 0 when no answer arrived. */
  status: number;
  /** An errcode or the client's error code: what the audit store is queried by. */
  reason: string;
  message: string;
}

/** Down (network, TLS, DNS, timeout, 5xx, 429) → retry later; refused by policy or a 4xx → give up. */
export function classifySendFailure(error: unknown): SendFailure {
  if (error instanceof FederationHttpError) {
    const retry = error.status === 429 || error.status >= 500;
    return { retry, status: error.status, reason: error.errcode ?? `http_${error.status}`, message: error.message };
  }
  if (isFederationClientError(error)) {
    const retry = !['ADDRESS_REFUSED', 'INVALID_SERVER_NAME'].includes(error.code);
    return { retry, status: 0, reason: error.code, message: error.message };
  }
  return { retry: true, status: 0, reason: 'internal_error', message: error instanceof Error ? error.message : String(error) };
}
