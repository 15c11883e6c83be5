// How many items wait in each application service's push queue (in the store), reported by the replica that
// pushes to it now: with the push latency, what shows a bridge falling behind. One series per registered
// application service (a bounded set: the operator's registrations).
import { Gauge, type Registry } from 'prom-client';

export interface AppServiceQueueSource {
  /** The services this replica pushes to now. */
  pushedHere(): string[];
  pendingCount(appServiceId: string): Promise<number>;
}

export const APPSERVICE_QUEUE_DEPTH = 'fedgate_appservice_queue_depth';

export function registerAppServiceQueueGauge(registry: Registry, source: AppServiceQueueSource): void {
  if (registry.getSingleMetric(APPSERVICE_QUEUE_DEPTH)) return;
  new Gauge({
    name: APPSERVICE_QUEUE_DEPTH,
    help: 'Items queued for an application service this replica pushes to (not yet accepted by it)',
    labelNames: ['appservice'],
    registers: [registry],
    async collect() {
      const depths = await Promise.all(source.pushedHere().map(async (id) => [id, await source.pendingCount(id).catch(() => undefined)] as const));
      this.reset();
      for (const [appservice, depth] of depths) if (depth !== undefined) this.set({ appservice }, depth);
    },
  });
}
