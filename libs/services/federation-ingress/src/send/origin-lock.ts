// One transaction at a time per origin, across every ingress replica: a lease in the shared store, taken for
// the transaction and given back after it. A replica that dies mid-transaction holds the origin at most
// `ttlMs`; the origin's retries are answered 429 until then. A local set spares the store round trip for
// the common case of a retry reaching the same replica.
import { randomUUID } from 'node:crypto';
import type { LeaseRepository } from '@fedgate/store';

export const originLeaseName = (origin: string) => `federation-transaction:${origin}`;

export class OriginLock {
  private readonly busy = new Set<string>();

  constructor(
    private readonly leases: LeaseRepository,
    private readonly ttlMs: number,
  ) {}

  async tryAcquire(origin: string): Promise<(() => Promise<void>) | undefined> {
    if (this.busy.has(origin)) return undefined;
    this.busy.add(origin);
    const holder = randomUUID();
    let held = false;
    try {
      held = await this.leases.tryAcquire(originLeaseName(origin), holder, this.ttlMs);
    } finally {
      if (!held) this.busy.delete(origin);
    }
    if (!held) return undefined;
    return async () => {
      this.busy.delete(origin);
      await this.leases.release(originLeaseName(origin), holder);
    };
  }
}
