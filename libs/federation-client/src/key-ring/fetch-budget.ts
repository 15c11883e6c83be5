// How many key fetches requests from the internet may cause: a token bucket per client address and one for
// all of them together. A fetch the budget refuses is not made; the caller sees the key as unknown.
import { LRUCache } from 'lru-cache';

export interface KeyFetchLimits {
  /** Fetches one client address may cause at once, refilled at `perAddressPerMinute`. */
  perAddressBurst: number;
  perAddressPerMinute: number;
  /** Fetches all client addresses together may cause per second (also the burst). */
  perSecond: number;
  /** Client addresses remembered; the least recently seen is forgotten first. */
  maxAddresses: number;
}

export const DEFAULT_KEY_FETCH_LIMITS: KeyFetchLimits = { perAddressBurst: 10, perAddressPerMinute: 30, perSecond: 20, maxAddresses: 10_000 };

export type FetchRefusal = 'address_rate' | 'global_rate';

class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly perMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  available(now: number): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
    return this.tokens >= 1;
  }

  take(): void {
    this.tokens -= 1;
  }
}

export class KeyFetchBudget {
  private readonly addresses: LRUCache<string, TokenBucket>;
  private readonly global: TokenBucket;

  constructor(
    private readonly limits: KeyFetchLimits,
    private readonly now: () => number,
  ) {
    this.addresses = new LRUCache({ max: limits.maxAddresses });
    this.global = new TokenBucket(limits.perSecond, limits.perSecond / 1_000, now());
  }

  /** Takes one fetch from the address's and the global budget, or says which one is spent. */
  take(clientAddress: string): FetchRefusal | undefined {
    const now = this.now();
    let bucket = this.addresses.get(clientAddress);
    if (!bucket) this.addresses.set(clientAddress, (bucket = new TokenBucket(this.limits.perAddressBurst, this.limits.perAddressPerMinute / 60_000, now)));
    if (!bucket.available(now)) return 'address_rate';
    if (!this.global.available(now)) return 'global_rate';
    bucket.take();
    this.global.take();
    return undefined;
  }

  get trackedAddresses(): number {
    return this.addresses.size;
  }
}
