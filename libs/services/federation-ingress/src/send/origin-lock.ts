// One transaction at a time per origin, across every ingress replica: a lease in the shared store, taken for
// the transaction and given back after it. The lease is short and renewed (renewMany, every third of its TTL,
// as partition leases are) while the transaction runs, so a replica killed mid-transaction holds the origin
// at most `ttlMs` (the origin's retries are answered 429 until then) while a live one keeps it as long as its
// transaction takes, up to `maxHoldMs` (past that the transaction is taken to be stuck). A local set spares
// the store round trip for the common case of a retry reaching the same replica.
//
// A renewal that finds the lease taken by another (this replica stalled past its expiry) ends the holding, as
// does `maxHoldMs`: renewals stop, and the transaction in work here still runs to its end. That is safe: what
// a transaction does is idempotent per (origin, txnId) and per event ID (PDUs are published under
// `event|origin|txnId`, EDUs under `origin:txnId:index`, both deduplicated by the bus; the recorded answer is
// the first one stored), so the origin's retry handled by the new holder at the same time publishes nothing
// twice.
import { randomUUID } from 'node:crypto';
import type { LeaseRepository } from '@fedgate/store';

export const originLeaseName = (origin: string) => `federation-transaction:${origin}`;

export interface OriginLockOptions {
  /** How often a held lease is renewed (default a third of the TTL). */
  renewMs?: number;
  /**
   * Renewals stop this long after the lease was taken (default never): a transaction still running then is
   * taken to be stuck, and the origin's retries may go to another replica once the lease expires.
   */
  maxHoldMs?: number;
  /** Renewals stopped at `maxHoldMs` with the transaction still in work here (log it). */
  onHeldTooLong?(origin: string): void;
  /** The lease of a transaction still in work here was taken by another replica (log it). */
  onLost?(origin: string): void;
  /** A renewal failed in the store; it is tried again on the next tick (log it). */
  onRenewalFailed?(origin: string, err: unknown): void;
  now?: () => number;
}

export class OriginLock {
  private readonly busy = new Set<string>();
  private readonly renewMs: number;
  private readonly now: () => number;

  constructor(
    private readonly leases: LeaseRepository,
    private readonly ttlMs: number,
    private readonly options: OriginLockOptions = {},
  ) {
    this.renewMs = options.renewMs ?? Math.max(100, Math.floor(ttlMs / 3));
    this.now = options.now ?? Date.now;
  }

  async tryAcquire(origin: string): Promise<(() => Promise<void>) | undefined> {
    if (this.busy.has(origin)) return undefined;
    this.busy.add(origin);
    const holder = randomUUID();
    let held = false;
    try {
      held = await this.leases.tryAcquire(originLeaseName(origin), holder, this.ttlMs, this.now());
    } finally {
      if (!held) this.busy.delete(origin);
    }
    if (!held) return undefined;
    const stopRenewing = this.keepRenewed(origin, holder);
    return async () => {
      stopRenewing();
      this.busy.delete(origin);
      await this.leases.release(originLeaseName(origin), holder);
    };
  }

  /** Renews at a fixed rate from when each renewal began, until stopped or the lease is found taken. */
  private keepRenewed(origin: string, holder: string): () => void {
    const name = originLeaseName(origin);
    const renewUntil = this.now() + (this.options.maxHoldMs ?? Infinity);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const schedule = (delayMs: number) => {
      if (stopped) return;
      timer = setTimeout(() => void renew(), Math.max(0, delayMs));
      timer.unref();
    };
    const renew = async () => {
      if (this.now() >= renewUntil) {
        stopped = true;
        this.options.onHeldTooLong?.(origin);
        return;
      }
      // The time is taken before the call, so the expiry this replica counts on is never later than the store's.
      const began = this.now();
      try {
        const renewed = await this.leases.renewMany([name], holder, this.ttlMs, began);
        if (stopped) return;
        if (!renewed.includes(name)) {
          stopped = true;
          this.options.onLost?.(origin);
          return;
        }
      } catch (err) {
        if (stopped) return;
        this.options.onRenewalFailed?.(origin, err);
      }
      schedule(this.renewMs - (this.now() - began));
    };
    schedule(this.renewMs);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }
}
