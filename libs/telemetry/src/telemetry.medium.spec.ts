import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { busOptionsFor, busTopology, EmbeddedBus, JetStreamBus, term } from '@fedgate/bus';
import { createLogger } from './logger';
import { createMetricsRegistry, prometheusBusObserver, registerConsumerGauges, serveMetrics } from './metrics';
import { setupTracing, type Tracing } from './tracing';

jest.setTimeout(60_000);

const register = path.resolve(__dirname, '../../../test/support/src/swc-register.cjs');
const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('telemetry', () => {
  let tracing: Tracing;
  const spans = new InMemorySpanExporter();
  beforeAll(() => {
    tracing = setupTracing({ service: 'test-publisher', exporters: [spans] });
  });
  afterAll(() => tracing.shutdown());

  it('follows one trace from a publish in this process to the handler in another', async () => {
    const prefix = `trace${process.pid}`;
    const topology = busTopology({ prefix, roomPartitions: 1 });
    const url = process.env.FEDGATE_TEST_NATS_URL as string;
    const child = fork(path.resolve(__dirname, 'children/traced-consumer.child.ts'), [], {
      execPath: process.execPath,
      execArgv: ['-r', register],
      env: { ...process.env, BUS_PREFIX: prefix, NATS_URL: url },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const lines: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) if (line.startsWith('{')) lines.push(JSON.parse(line));
    });
    const bus = await JetStreamBus.connect({ servers: url }, busOptionsFor(topology));
    try {
      await new Promise((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', reject);
      });
      await bus.start();
      const traceId = await trace.getTracer('test').startActiveSpan('incoming transaction', async (span) => {
        await bus.publish(topology.inboundPdu.partition(0), { eventId: '$traced' } as never, { messageId: '$traced' });
        span.end();
        return span.spanContext().traceId;
      });
      await until(() => lines.some((l) => l.msg === 'handled'), 'the handler log line');
      const handled = lines.find((l) => l.msg === 'handled') as Record<string, string>;
      expect(handled.trace_id).toBe(traceId);
      expect(handled.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(handled.service).toBe('traced-consumer');
      const producer = spans.getFinishedSpans().find((s) => s.name === `send ${topology.inboundPdu.partition(0)}`);
      expect(producer?.attributes).toMatchObject({ 'messaging.system.name': 'nats', 'messaging.message.id': '$traced' });
      expect(producer?.spanContext().traceId).toBe(traceId);
    } finally {
      child.kill('SIGKILL');
      await bus.close();
    }
  });

  it('writes log lines carrying the active trace and span IDs', () => {
    const out: string[] = [];
    const logger = createLogger({ service: 'svc', destination: new Writable({ write: (c, _e, cb) => (out.push(c.toString()), cb()) }) as never });
    trace.getTracer('test').startActiveSpan('work', (span) => {
      logger.info('inside');
      span.end();
      const line = JSON.parse(out[0]);
      expect(line).toMatchObject({ msg: 'inside', service: 'svc', trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    });
    logger.info('outside');
    expect(JSON.parse(out[1]).trace_id).toBeUndefined();
  });

  it('serves bus counters and consumer gauges on /metrics', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-metrics-'));
    const registry = createMetricsRegistry('test', false);
    const topology = busTopology({ prefix: 'metrics', roomPartitions: 1 });
    const bus = new EmbeddedBus({ ...busOptionsFor(topology, prometheusBusObserver(registry)), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 10 });
    const consumer = topology.consumers.stateResolverInbound(0);
    registerConsumerGauges(registry, bus, () => [consumer]);
    const server = await serveMetrics(registry, 0, '127.0.0.1');
    try {
      await bus.start();
      let handled = 0;
      const sub = await bus.consume(consumer, (m) => (handled++, m.messageId === '$bad' ? term('bad') : undefined));
      await bus.publish(topology.inboundPdu.partition(0), {} as never, { messageId: '$good' });
      await bus.publish(topology.inboundPdu.partition(0), {} as never, { messageId: '$bad' });
      await until(() => handled === 2, 'both handled');
      await sub.stop();
      const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      expect(body).toMatch(/fedgate_bus_published_total\{.*duplicate="false".*\} 2/);
      expect(body).toMatch(/fedgate_bus_handled_total\{.*outcome="ack".*\} 1/);
      expect(body).toMatch(/fedgate_bus_dead_letters_total\{.*\} 1/);
      expect(body).toMatch(/fedgate_bus_consumer_lag\{.*\} 0/);
      expect(body).toMatch(/fedgate_bus_consumer_ack_pending\{.*\} 0/);
    } finally {
      await server.close();
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
