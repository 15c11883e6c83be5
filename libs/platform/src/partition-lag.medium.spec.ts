// Issue 12: every process exported the same lag gauges, for every consumer of the pipeline, so an operator
// could not see which replica was behind. Now each replica reports its own partitions: messages waiting,
// delivered but unsettled, and the age of the oldest unsettled one, labelled with its instance ID.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, JetStreamBus, type Bus, type BusSubscription } from '@fedgate/bus';
import { createMetricsRegistry, registerPartitionLagGauges, setOwnedPartitions, setServiceInstanceId } from '@fedgate/telemetry';
import { partitionConsumers } from './build-platform';

jest.setTimeout(60_000);

const adapters: Array<[string, (prefix: string, dir: string) => Promise<Bus>]> = [
  ['embedded', async (prefix, dir) => new EmbeddedBus({ ...busOptionsFor(busTopology({ prefix, roomPartitions: 4 })), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 10 })],
  ['JetStream', async (prefix) => JetStreamBus.connect({ servers: process.env.FEDGATE_TEST_NATS_URL as string }, busOptionsFor(busTopology({ prefix, roomPartitions: 4 })))],
];

describe.each(adapters)('partition lag gauges on the %s bus', (_name, openBus) => {
  it('report only owned partitions, grow while work piles up with the age of the oldest message, and fall to 0 once drained', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-lag-'));
    const prefix = `lag${process.pid}${_name.slice(0, 2)}`;
    const topology = busTopology({ prefix, roomPartitions: 4 });
    const bus = await openBus(prefix, dir);
    setServiceInstanceId('state-resolver-7');
    const registry = createMetricsRegistry('state-resolver', false);
    registerPartitionLagGauges(registry, bus, partitionConsumers(topology));
    const subscriptions: BusSubscription[] = [];
    try {
      await bus.start();
      // Consumers exist for partitions 0 and 1; this replica owns partition 1 only.
      for (const p of [0, 1]) await (await bus.consume(topology.consumers.stateResolverInbound(p), () => undefined)).stop();
      setOwnedPartitions('state-resolver', [1]);
      for (let i = 0; i < 3; i++) await bus.publish(topology.inboundPdu.partition(1), { eventId: `$a${i}` } as never, { messageId: `$a${i}` });
      for (let i = 0; i < 2; i++) await bus.publish(topology.inboundPdu.partition(0), { eventId: `$b${i}` } as never, { messageId: `$b${i}` });

      const series = async (name: string) =>
        (await registry.metrics()).split('\n').filter((line) => line.startsWith(`${name}{`) && line.includes('stage="state-resolver"'));
      // Scrapes reuse one reading of the bus for a second: look again until the gauges show what is awaited.
      const eventually = async (names: string[], accept: (lines: string[]) => boolean) => {
        let lines: string[] = [];
        for (let i = 0; i < 1_000; i++) {
          lines = (await Promise.all(names.map(series))).flat();
          if (accept(lines)) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        return lines;
      };
      const value = (line: string | undefined) => Number(line?.split(' ').pop());

      expect(await series('fedgate_partition_lag_messages')).toEqual([
        'fedgate_partition_lag_messages{stage="state-resolver",partition="1",service="state-resolver",service_instance_id="state-resolver-7"} 3',
      ]);
      const [age] = await eventually(['fedgate_partition_oldest_unsettled_age_seconds'], ([line]) => value(line) > 0);
      expect(age).toContain('partition="1"');
      expect(value(age)).toBeGreaterThan(0);

      let handled = 0;
      subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(1), () => void handled++));
      const gauges = ['fedgate_partition_lag_messages', 'fedgate_partition_ack_pending_messages', 'fedgate_partition_oldest_unsettled_age_seconds'];
      const drained = await eventually(gauges, (lines) => handled === 3 && lines.every((line) => value(line) === 0));
      expect(handled).toBe(3);
      expect(drained).toHaveLength(3);
      expect(drained.map(value)).toEqual([0, 0, 0]);

      // Partition 1 handed over, partition 0 taken: the series follow ownership.
      setOwnedPartitions('state-resolver', [0]);
      const moved = await eventually(['fedgate_partition_lag_messages'], ([line]) => line?.includes('partition="0"') === true);
      expect(moved).toEqual(['fedgate_partition_lag_messages{stage="state-resolver",partition="0",service="state-resolver",service_instance_id="state-resolver-7"} 2']);
    } finally {
      setOwnedPartitions('state-resolver', []);
      for (const s of subscriptions) await s.stop();
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
