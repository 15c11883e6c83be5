// Destination queue depth for the operator: how many items wait for each destination this replica sends to.
// Destinations are chosen by remote servers and unbounded, so only the deepest queues get a series of their
// own; the rest are summed under `other`.
import { Gauge, type Registry } from 'prom-client';
import { OVERFLOW_LABEL } from '@fedgate/telemetry';

/** Destinations with a series of their own at most (the deepest queues at the time of the scrape). */
export const MAX_DESTINATION_SERIES = 20;
/** Destination queues read in one scrape at most: one store count each. */
export const MAX_DESTINATIONS_READ = 1_000;

export interface QueueDepthSource {
  /** Queued items per destination this replica owns and that has queued work. */
  queueDepths(limit: number): Promise<Map<string, number>>;
}

export function registerQueueDepthGauges(registry: Registry, source: QueueDepthSource, maxSeries = MAX_DESTINATION_SERIES): void {
  let last: { at: number; depths: Promise<Map<string, number>> } | undefined;
  const read = () => {
    if (!last || Date.now() - last.at >= 1_000) last = { at: Date.now(), depths: source.queueDepths(MAX_DESTINATIONS_READ).catch(() => new Map<string, number>()) };
    return last.depths;
  };
  new Gauge({
    name: 'fedgate_egress_queue_depth',
    help: `Items queued for a destination this replica sends to; the ${maxSeries} deepest queues by name, the rest summed as destination="${OVERFLOW_LABEL}"`,
    labelNames: ['destination'],
    registers: [registry],
    async collect() {
      const depths = [...(await read())].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      this.reset();
      for (const [destination, depth] of depths.slice(0, maxSeries)) this.set({ destination }, depth);
      const rest = depths.slice(maxSeries).reduce((sum, [, depth]) => sum + depth, 0);
      if (depths.length > maxSeries) this.set({ destination: OVERFLOW_LABEL }, rest);
    },
  });
  new Gauge({
    name: 'fedgate_egress_destinations_queued',
    help: 'Destinations this replica sends to with items queued',
    registers: [registry],
    async collect() {
      this.set((await read()).size);
    },
  });
}
