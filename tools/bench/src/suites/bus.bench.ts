import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, JetStreamBus, type Bus, type BusTopology } from '@fedgate/bus';
import { startNats, stopNats } from '@fedgate/testing';
import { fmt, percentile, type BenchSection, type BenchSuite } from '../harness';

const THROUGHPUT_MESSAGES = 4000;
const LATENCY_SAMPLES = 300;
const PARTITIONS = 8;

interface Sample {
  sentAt: number;
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

async function measure(name: string, topology: BusTopology, bus: Bus): Promise<BenchSection> {
  await bus.start();
  let handled = 0;
  const latencies: number[] = [];
  const subs = [];
  for (let p = 0; p < PARTITIONS; p++)
    subs.push(
      await bus.consume<Sample>({ ...topology.consumers.stateResolverInbound(p), filterSubject: topology.inboundPdu.partition(p) as never }, (m) => {
        handled++;
        if (m.data.sentAt) latencies.push(performance.now() - m.data.sentAt);
      }),
    );
  const start = performance.now();
  for (let i = 0; i < THROUGHPUT_MESSAGES; i += 100) {
    const batch = [];
    for (let j = i; j < i + 100; j++) batch.push(bus.publish(topology.inboundPdu.partition(j % PARTITIONS) as never, { sentAt: 0 }, { messageId: `t${j}` }));
    await Promise.all(batch);
  }
  const publishedMs = performance.now() - start;
  await until(() => handled >= THROUGHPUT_MESSAGES);
  const totalMs = performance.now() - start;
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const target = handled + 1;
    await bus.publish(topology.inboundPdu.partition(i % PARTITIONS) as never, { sentAt: performance.now() }, { messageId: `l${i}` });
    await until(() => handled >= target);
  }
  await Promise.all(subs.map((s) => s.stop()));
  latencies.sort((a, b) => a - b);
  return {
    title: name,
    rows: [
      { name: 'publish rate (100 in flight)', value: `${Math.round((THROUGHPUT_MESSAGES / publishedMs) * 1000)} msg/s` },
      { name: `end-to-end throughput (${PARTITIONS} ordered partitions)`, value: `${Math.round((THROUGHPUT_MESSAGES / totalMs) * 1000)} msg/s` },
      { name: 'publish→handler latency p50', value: fmt.ms(percentile(latencies, 50)), note: 'one message at a time' },
      { name: 'publish→handler latency p99', value: fmt.ms(percentile(latencies, 99)) },
    ],
  };
}

const suite: BenchSuite = {
  name: 'bus',
  async run() {
    const sections: BenchSection[] = [];
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bench-bus-'));
    const embeddedTopology = busTopology({ prefix: `benche${Date.now()}`, roomPartitions: PARTITIONS });
    const embedded = new EmbeddedBus({ ...busOptionsFor(embeddedTopology), path: path.join(dir, 'bus.sqlite') });
    try {
      sections.push(await measure('embedded (SQLite)', embeddedTopology, embedded));
    } finally {
      await embedded.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const nats = await startNats();
    const jsTopology = busTopology({ prefix: `benchj${Date.now()}`, roomPartitions: PARTITIONS });
    const js = await JetStreamBus.connect({ servers: nats.url }, busOptionsFor(jsTopology));
    try {
      sections.push(await measure('JetStream (nats-server, file store)', jsTopology, js));
    } finally {
      await js.close();
      await stopNats();
    }
    return sections;
  },
};
export default suite;
