/**
 * One transaction at a time per origin, within this process. With several ingress replicas a server could
 * have one transaction in flight on each; the per-event-ID message IDs on the bus make that harmless.
 */
export class OriginLock {
  private readonly busy = new Set<string>();

  tryAcquire(origin: string): (() => void) | undefined {
    if (this.busy.has(origin)) return undefined;
    this.busy.add(origin);
    return () => this.busy.delete(origin);
  }
}
