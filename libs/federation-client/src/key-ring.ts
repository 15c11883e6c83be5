import type { VerifyKeyLookup } from '@fedgate/protocol';

export interface ServerKeyRequest {
  serverName: string;
  /** Key IDs that must be known; absent: whatever the server currently publishes. */
  keyIds?: string[];
  /** Keys must be known valid at least until this time (ms); the spec's `minimum_valid_until_ts`. */
  minimumValidUntilTs?: number;
}

/** Who caused a lookup: requests from the internet name their client address, so fetches can be budgeted per address. */
export interface KeyRingCaller {
  clientAddress?: string;
}

/**
 * Remote servers' verify keys: cached (in the store) until `valid_until_ts`, fetched from the server itself
 * or through notaries on a miss. Verification itself is synchronous (protocol's VerifyKeyLookup), so callers
 * prepare the keys they need first, then verify.
 */
export interface KeyRing {
  prepare(requests: ServerKeyRequest[], caller?: KeyRingCaller): Promise<VerifyKeyLookup>;
  /**
   * Optional, for serving `/_matrix/key/v2/query` as a notary: the server's verified key documents as fetched
   * (carrying its own signatures), valid at least until `minimumValidUntilTs`; empty when none can be found.
   */
  serverKeyDocuments?(serverName: string, minimumValidUntilTs?: number, caller?: KeyRingCaller): Promise<Record<string, unknown>[]>;
}
