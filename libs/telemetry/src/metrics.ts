import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Bus, BusObserver, ConsumerSpec } from '@fedgate/bus';
import { answerHealth } from './health';
import { ownedPartitions, serviceInstanceId } from './instance';

export function createMetricsRegistry(service: string, defaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service, service_instance_id: serviceInstanceId() });
  if (defaults) collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'fedgate_partition_owned',
    help: 'Partitions this process works on now, by stage (1 per owned partition; sum for the count)',
    labelNames: ['stage', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [stage, partitions] of ownedPartitions()) for (const p of partitions) this.set({ stage, partition: String(p) }, 1);
    },
  });
  return registry;
}

/** Distinct values one label keeps at most; later new values are counted under `other`. */
export const MAX_LABEL_VALUES = 200;
export const OVERFLOW_LABEL = 'other';

/**
 * A label whose values may come from outside (a subject carries a remote's EDU type): the first
 * `max` distinct values are kept, any further one becomes `other`, so series stay bounded.
 */
export function boundedLabel(max = MAX_LABEL_VALUES): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return OVERFLOW_LABEL;
    seen.add(value);
    return value;
  };
}

/** Bus counters in Prometheus form; pass as the bus adapter's observer. */
export function prometheusBusObserver(registry: Registry, maxLabelValues = MAX_LABEL_VALUES): BusObserver {
  const published = new Counter({ name: 'fedgate_bus_published_total', help: 'Messages published', labelNames: ['subject', 'duplicate'], registers: [registry] });
  const handled = new Counter({ name: 'fedgate_bus_handled_total', help: 'Deliveries settled', labelNames: ['consumer', 'outcome'], registers: [registry] });
  const redelivered = new Counter({ name: 'fedgate_bus_redeliveries_total', help: 'Deliveries after the first', labelNames: ['consumer'], registers: [registry] });
  const dead = new Counter({ name: 'fedgate_bus_dead_letters_total', help: 'Messages sent to dead letters', labelNames: ['consumer'], registers: [registry] });
  const subjectLabel = boundedLabel(maxLabelValues);
  const consumerLabel = boundedLabel(maxLabelValues);
  const outcomeLabel = boundedLabel(16);
  return {
    published: (subject, duplicate) => published.inc({ subject: subjectLabel(subject), duplicate: String(duplicate) }),
    handled: (consumer, outcome) => handled.inc({ consumer: consumerLabel(consumer), outcome: outcomeLabel(outcome) }),
    redelivered: (consumer) => redelivered.inc({ consumer: consumerLabel(consumer) }),
    deadLettered: (consumer) => dead.inc({ consumer: consumerLabel(consumer) }),
  };
}

/**
 * Consumer lag and ack-pending, read from the bus at scrape time, for the consumers this process works on
 * (`consumers()`; a replica reports its own partitions, not every replica's).
 */
export function registerConsumerGauges(registry: Registry, bus: Bus, consumers: () => ConsumerSpec[]): void {
  const gauge = (name: string, help: string, read: (stats: { pending: number; ackPending: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['consumer'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const consumer of consumers()) {
          try {
            this.set({ consumer: consumer.durable }, read(await bus.consumerStats(consumer)));
          } catch {
            // consumer not created yet
          }
        }
      },
    });
  gauge('fedgate_bus_consumer_lag', 'Messages not yet delivered to the consumer', (s) => s.pending);
  gauge('fedgate_bus_consumer_ack_pending', 'Delivered, not yet settled', (s) => s.ackPending);
}

/** The consumers that carry one owned partition's work, by the stage label they are reported under. */
export type PartitionConsumers = (stage: string, partition: number) => Array<{ stage: string; consumer: ConsumerSpec }>;

/** How long one scrape's reading of the bus is reused by the other partition gauges of the same scrape. */
const PARTITION_STATS_REUSE_MS = 1_000;

/**
 * Lag per partition this process owns now (`setOwnedPartitions`): messages waiting, delivered but unsettled,
 * and the age of the oldest unsettled one. Labels are bounded: a few stages × the configured partitions.
 * A partition handed over disappears from this replica's series at the next scrape and appears on its new owner's.
 */
export function registerPartitionLagGauges(registry: Registry, bus: Bus, consumersOf: PartitionConsumers): void {
  type Row = { stage: string; partition: string; pending: number; ackPending: number; ageSeconds: number };
  let last: { at: number; rows: Promise<Row[]> } | undefined;
  const read = (): Promise<Row[]> => {
    if (last && Date.now() - last.at < PARTITION_STATS_REUSE_MS) return last.rows;
    const work = [...ownedPartitions()].flatMap(([stage, partitions]) => partitions.flatMap((p) => consumersOf(stage, p).map((c) => ({ ...c, partition: String(p) }))));
    const rows = Promise.all(
      work.map(async ({ stage, consumer, partition }) => {
        try {
          const stats = await bus.consumerStats(consumer);
          return [{ stage, partition, pending: stats.pending, ackPending: stats.ackPending, ageSeconds: stats.oldestUnsettledAgeMs / 1000 }];
        } catch {
          return []; // consumer not created yet
        }
      }),
    ).then((r) => r.flat());
    last = { at: Date.now(), rows };
    return rows;
  };
  const gauge = (name: string, help: string, value: (row: Row) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['stage', 'partition'],
      registers: [registry],
      async collect() {
        const rows = await read();
        this.reset();
        for (const row of rows) this.set({ stage: row.stage, partition: row.partition }, value(row));
      },
    });
  gauge('fedgate_partition_lag_messages', 'Messages of an owned partition not yet delivered to its consumer', (r) => r.pending);
  gauge('fedgate_partition_ack_pending_messages', 'Messages of an owned partition delivered and not yet settled', (r) => r.ackPending);
  gauge('fedgate_partition_oldest_unsettled_age_seconds', 'Age of the oldest message of an owned partition not yet settled (0 when none)', (r) => r.ageSeconds);
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics for a registry on a port (0 picks a free one), and the health paths (/livez,
 * /startupz, /readyz) the orchestrator probes. Loopback unless told otherwise:
 * /metrics is unauthenticated and describes internals.
 */
export async function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = req.url?.split('?')[0] ?? '';
    if (req.method === 'GET' && path !== '/metrics') {
      void answerHealth(path).then((answer) => {
        if (answer) res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
        else res.writeHead(404).end();
      });
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: Error) => res.writeHead(500).end(error.message),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
