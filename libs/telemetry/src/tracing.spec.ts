import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, trace } from '@opentelemetry/api';
import { setOwnedPartitions, setServiceInstanceId } from './instance';
import { setupTracing } from './tracing';

interface ReceivedExport {
  path: string;
  contentType: string;
  body: string;
}

// A stand-in OTLP/HTTP collector on loopback: records each export request and answers 200.
async function startCollector(): Promise<{ url: string; received: ReceivedExport[]; close(): Promise<void> }> {
  const received: ReceivedExport[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', contentType: String(request.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('setupTracing with an OTLP endpoint', () => {
  it('exports ended spans with the service name to the collector', async () => {
    const collector = await startCollector();
    setServiceInstanceId('tracing-test-1');
    setOwnedPartitions('state-resolver', [0, 1, 2, 9]);
    const tracing = setupTracing({ service: 'otlp-export-test', otlpEndpoint: collector.url });
    try {
      const traceId = trace.getTracer('test').startActiveSpan('exported work', (span) => {
        span.setAttribute('fedgate.test', 'yes');
        span.end();
        return span.spanContext().traceId;
      });
      await tracing.provider.forceFlush();

      expect(collector.received).toHaveLength(1);
      const [request] = collector.received;
      expect(request.path).toBe('/v1/traces');
      expect(request.contentType).toMatch(/^application\/json/);
      const body = JSON.parse(request.body);
      const [resourceSpans] = body.resourceSpans;
      expect(resourceSpans.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'otlp-export-test' } });
      // Issue 12: spans tell replicas apart, and say which partitions the process owned.
      expect(resourceSpans.resource.attributes).toContainEqual({ key: 'service.instance.id', value: { stringValue: 'tracing-test-1' } });
      const [span] = resourceSpans.scopeSpans[0].spans;
      expect(span).toMatchObject({ name: 'exported work', traceId });
      expect(span.attributes).toContainEqual({ key: 'fedgate.test', value: { stringValue: 'yes' } });
      expect(span.attributes).toContainEqual({ key: 'fedgate.partitions', value: { stringValue: '{"state-resolver":"0-2,9"}' } });
    } finally {
      await tracing.shutdown();
      await collector.close();
    }
  });

  it('issue 19 (span cost): without an exporter spans carry trace IDs but are not recorded, and no span processor runs', async () => {
    const saved = { fedgate: process.env.FEDGATE_OTLP_TRACES_ENDPOINT, otel: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT };
    delete process.env.FEDGATE_OTLP_TRACES_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    setOwnedPartitions('state-resolver', [0]);
    const tracing = setupTracing({ service: 'no-export-test' });
    try {
      const tracer = trace.getTracer('test');
      tracer.startActiveSpan('local only', (parent) => {
        expect(parent.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
        expect(parent.isRecording()).toBe(false);
        // The partitions processor would have set this attribute on a recording span.
        expect((parent as unknown as { attributes?: unknown }).attributes).toBeUndefined();
        const child = tracer.startSpan('child');
        expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
        expect(child.spanContext().spanId).not.toBe(parent.spanContext().spanId);
        child.end();
        parent.end();
      });
      await tracing.provider.forceFlush();
    } finally {
      setOwnedPartitions('state-resolver', []);
      await tracing.shutdown();
      if (saved.fedgate !== undefined) process.env.FEDGATE_OTLP_TRACES_ENDPOINT = saved.fedgate;
      if (saved.otel !== undefined) process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = saved.otel;
    }
  });

  it('records every span when exporting, a child of a remote parent that did not record included', async () => {
    const exported: string[] = [];
    const exporter = { export: (spans: { name: string }[], done: (r: { code: number }) => void) => { exported.push(...spans.map((s) => s.name)); done({ code: 0 }); }, shutdown: async () => undefined };
    const tracing = setupTracing({ service: 'export-test', exporters: [exporter as never] });
    try {
      const remote = trace.setSpanContext(context.active(), { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 0, isRemote: true });
      const span = trace.getTracer('test').startSpan('after an unrecorded hop', {}, remote);
      expect(span.isRecording()).toBe(true);
      expect(span.spanContext().traceId).toBe('a'.repeat(32));
      span.end();
      await tracing.provider.forceFlush();
      expect(exported).toEqual(['after an unrecorded hop']);
    } finally {
      await tracing.shutdown();
    }
  });
});
