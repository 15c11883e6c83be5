import type { EgressBackoffConfig, FedgateConfig } from '@fedgate/config';

export interface EgressSettings {
  backoff: EgressBackoffConfig;
  requestTimeoutMs: number;
  /** The spec's transaction limits. */
  maxPdusPerTransaction: number;
  maxEdusPerTransaction: number;
  /** Typing notifications older than this are dropped instead of sent late (clients time typing out after ~30 s). */
  typingTtlMs: number;
  /**
   * Catch-up: a destination that failed and whose oldest queued item waited longer than this, or whose queue
   * holds more than `catchUpQueueLimit` items, gets only the rooms' latest events; it fetches the rest itself.
   */
  catchUpAfterMs: number;
  catchUpQueueLimit: number;
  /** How often a backing-off destination re-reads its record (another replica may have woken it). */
  wakePollMs: number;
  /**
   * How many destinations prepare their next transaction at once (store reads and writes up to the request), each
   * batch a turn of the event loop apart. Unbounded, a thousand senders started together (resumed at start, a
   * partition taken over) each prepared before the first request could leave (issue 19). Default 16.
   */
  preparingAtOnce?: number;
  /**
   * How long destination steps (an item queued, a transaction prepared and sent, an answer settled) may run in one turn
   * of the event loop across all destinations; the listeners wait behind at most about this (issue 19). Default 5 ms.
   */
  destinationStepsMsPerTurn?: number;
  /** Which share of destination and room partitions this process serves. */
  replicaIndex: number;
  replicaCount: number;
}

export const EGRESS_SETTINGS = Symbol.for('fedgate.egress-settings');

export function egressSettingsFrom(config: FedgateConfig, overrides: Partial<EgressSettings> = {}): EgressSettings {
  return {
    backoff: config.egress.backoff,
    requestTimeoutMs: config.egress.requestTimeoutMs,
    maxPdusPerTransaction: 50,
    maxEdusPerTransaction: 100,
    typingTtlMs: 30_000,
    catchUpAfterMs: 60 * 60_000,
    catchUpQueueLimit: 5_000,
    wakePollMs: 5_000,
    replicaIndex: config.replicas.egress.index,
    replicaCount: config.replicas.egress.count,
    ...overrides,
  };
}
