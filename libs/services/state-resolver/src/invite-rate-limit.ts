// Invites each remote server may send us: a token bucket per origin. Every invite we accept is stored,
// pushed to an application service and may make chat-sync ask that service about the invitee, so a
// server inviting without pause costs us work without bound. The table of origins is bounded too: the
// least recently seen origin is forgotten first (it starts again with a full bucket).

import { LRUCache } from 'lru-cache';

export interface InviteRateLimitOptions {
  /** Invites an origin may send at once. */
  burst: number;
  /** Invites per second it gets back. */
  perSecond: number;
  /** Origins remembered at most. */
  maxOrigins: number;
  now?: () => number;
}

export const DEFAULT_INVITE_RATE_LIMIT: InviteRateLimitOptions = { burst: 20, perSecond: 0.5, maxOrigins: 10_000 };

export class InviteRateLimit {
  private readonly buckets: LRUCache<string, { tokens: number; at: number }>;
  private readonly now: () => number;

  constructor(private readonly options: InviteRateLimitOptions = DEFAULT_INVITE_RATE_LIMIT) {
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache({ max: options.maxOrigins });
  }

  /** Takes one invite from the origin's budget: undefined when allowed, else the milliseconds to wait. */
  take(origin: string): number | undefined {
    const now = this.now();
    const bucket = this.buckets.get(origin) ?? { tokens: this.options.burst, at: now };
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.options.perSecond);
    bucket.at = now;
    this.buckets.set(origin, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.ceil(((1 - bucket.tokens) / this.options.perSecond) * 1000);
  }
}
