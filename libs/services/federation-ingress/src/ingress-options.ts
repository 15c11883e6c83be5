// Tunables of the ingress module; the defaults suit production, tests shorten them.
import type { PolicyServerConfig } from '@fedgate/config';
import { DEFAULT_RATE_LIMIT, type RateLimitSettings } from './auth/origin-rate-limiter';

export const INGRESS_OPTIONS = Symbol.for('fedgate.federation-ingress.options');

export interface IngressOptions {
  /** `valid_until_ts` of our key document is now + this (default one week). */
  keyValidityMs: number;
  /** Spec limits of one transaction. */
  maxPdusPerTransaction: number;
  maxEdusPerTransaction: number;
  /** Answered with a 429 for a second concurrent transaction from the same origin. */
  busyRetryAfterMs: number;
  /**
   * What a peer is told to wait (503, `Retry-After`) when our bus or store failed under its transaction:
   * our outage, so the transaction is not recorded and its retry is handled in full.
   */
  unavailableRetryAfterMs: number;
  /**
   * How long the per-origin transaction lease (shared by all ingress replicas) outlives a replica that died holding
   * it: a live holder renews it every third of this while its transaction runs.
   */
  originLockTtlMs: number;
  /** A transaction still running this long is taken to be stuck: its origin lease is no longer renewed. */
  originLockMaxHoldMs: number;
  /** At most one server-up signal per origin per this long. */
  serverUpIntervalMs: number;
  /** Largest `limit` honoured by backfill and get_missing_events. */
  maxEventsPerRead: number;
  /** Per-origin inbound limits (config `federation.rateLimit` overrides them). */
  rateLimit: RateLimitSettings;
  /** Servers one notary query (`POST /_matrix/key/v2/query`) may name; more is 400 M_INVALID_PARAM. */
  maxNotaryQueryServers: number;
  /** Policy server settings over config `policyServer` (tests: the harness has no full config). */
  policyServer?: Partial<PolicyServerConfig>;
}

export const DEFAULT_INGRESS_OPTIONS: IngressOptions = {
  keyValidityMs: 7 * 24 * 60 * 60 * 1000,
  maxPdusPerTransaction: 50,
  maxEdusPerTransaction: 100,
  busyRetryAfterMs: 1_000,
  unavailableRetryAfterMs: 5_000,
  originLockTtlMs: 12_000,
  originLockMaxHoldMs: 120_000,
  serverUpIntervalMs: 30_000,
  maxEventsPerRead: 100,
  rateLimit: DEFAULT_RATE_LIMIT,
  maxNotaryQueryServers: 100,
};
