// Leases: a named lock with an expiry, shared by every process on the same store (e.g. "one transaction at a
// time per origin" across ingress replicas). A holder that dies loses its lease when the expiry passes.

export interface LeaseRepository {
  /**
   * Takes lease `name` for `holder` until `now + ttlMs` when nobody holds it, its holding has expired, or
   * `holder` holds it already (then the expiry moves). True when `holder` holds it afterwards. Atomic across
   * processes.
   */
  tryAcquire(name: string, holder: string, ttlMs: number, now?: number): Promise<boolean>;
  /**
   * As tryAcquire, and returns the lease's epoch (undefined when another holds it): a number taken from one
   * counter of the whole store whenever the lease passes to a holder, kept while that holder renews it, so
   * a later holding always has a higher epoch than any before it (of this or any other lease). The fencing
   * token of commits made under the lease (PendingCommitRepository.add).
   */
  acquireWithEpoch(name: string, holder: string, ttlMs: number, now?: number): Promise<number | undefined>;
  /** Gives the lease up if `holder` still holds it; a lease someone else took since stays theirs. */
  release(name: string, holder: string): Promise<void>;
  /**
   * Renews, in one write, those of `names` that `holder` still holds (expired or not, as long as nobody took
   * them since) until `now + ttlMs`; returns the names renewed. Lost ones are left alone.
   */
  renewMany(names: readonly string[], holder: string, ttlMs: number, now?: number): Promise<string[]>;
  /** The leases whose name starts with `prefix` and that have not expired at `now`, by name (e.g. the live replicas of a stage). */
  live(prefix: string, now?: number): Promise<LiveLease[]>;
}

export interface LiveLease {
  name: string;
  holder: string;
  expiresTs: number;
}
