import { isFederationClientError, FederationHttpError } from '@fedgate/federation-client';

export interface SendFailure {
  /** Retry the same transaction after backing off, or give it up (recorded with the reason). */
  retry: boolean;
  /** HTTP status, 0 when no answer arrived. */
  status: number;
  /** An errcode or the client's error code: what the audit store is queried by. */
  reason: string;
  message: string;
  /** The remote's `retry_after_ms` on a 429, when it gave one. */
  retryAfterMs?: number;
}

/**
 * What a failed `PUT /send/{txnId}` means, per status:
 * - no answer (network, TLS, DNS, timeout), 5xx, 408, 425: down for now → retry later;
 * - 429: retry, after `retry_after_ms` when the remote says so;
 * - 401 / 403: the remote could not verify our X-Matrix signature — typically it has not fetched our key
 *   yet, or our key just rotated — or it refuses us for now (server ACLs change): retry with backoff
 *   (a long outage turns into catch-up, so the queue stays bounded);
 * - 400, 404, 413 and other 4xx: the same transaction would be refused again (bad body, too large, no
 *   such endpoint) → give it up, with the reason recorded and catch-up queued for its rooms;
 * - an address our policy refuses, or a server name that is not one: give up.
 */
export function classifySendFailure(error: unknown): SendFailure {
  if (error instanceof FederationHttpError) {
    const status = error.status;
    const retry = status >= 500 || status === 408 || status === 425 || status === 429 || status === 401 || status === 403;
    const failure: SendFailure = { retry, status, reason: error.errcode ?? `http_${status}`, message: error.message };
    const retryAfterMs = (error.body as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
    if (status === 429 && typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) failure.retryAfterMs = retryAfterMs;
    return failure;
  }
  if (isFederationClientError(error)) {
    const retry = !['ADDRESS_REFUSED', 'INVALID_SERVER_NAME'].includes(error.code);
    return { retry, status: 0, reason: error.code, message: error.message };
  }
  return { retry: true, status: 0, reason: 'internal_error', message: error instanceof Error ? error.message : String(error) };
}
