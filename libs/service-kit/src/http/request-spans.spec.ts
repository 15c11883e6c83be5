// Issue 12: no span for an incoming request. Each request now gets a server span, active in its handler (so a
// bus publish there is its child). A lying peer must not steer our traces: the federation listener ignores
// the caller's traceparent; only the client-server listener (the chat platform) continues the caller's trace.
import { Controller, Module, Put } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import pino from 'pino';
import { setupTracing, type Tracing } from '@fedgate/telemetry';
import { createHttpApp, listenHttpApp } from './http-app';

@Controller()
class SendController {
  @Put('/_matrix/federation/v1/send/:txnId')
  send() {
    // Work the handler does (a bus publish, say) runs inside the request's span.
    trace.getTracer('test').startSpan('inner work').end();
    return {};
  }
}

@Module({ controllers: [SendController] })
class SendModule {}

const REMOTE_TRACE = '0af7651916cd43dd8448eb211c80319c';
const traceparent = `00-${REMOTE_TRACE}-b7ad6b7169203331-01`;

describe('server spans per request (issue 12)', () => {
  const spans = new InMemorySpanExporter();
  let tracing: Tracing;
  const apps: NestFastifyApplication[] = [];

  beforeAll(() => {
    tracing = setupTracing({ service: 'span-test', exporters: [spans] });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await tracing.shutdown();
  });
  beforeEach(() => spans.reset());

  const start = async (name: string, trustTraceContext: boolean) => {
    const listener = { name, bindAddress: '127.0.0.1', port: 0, maxBodyBytes: 1024, trustTraceContext };
    const app = await createHttpApp({ module: SendModule, listener, logger: pino({ level: 'silent' }) });
    apps.push(app);
    return listenHttpApp(app, listener);
  };
  const put = (base: string) => fetch(`${base}/_matrix/federation/v1/send/t1?x=secret`, { method: 'PUT', headers: { 'content-type': 'application/json', traceparent }, body: '{}' });

  it('federation listener: a server span with route and status, the handler inside it, and the remote traceparent ignored', async () => {
    expect((await put(await start('federation', false))).status).toBe(200);
    const server = spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.name).toBe('PUT /_matrix/federation/v1/send/:txnId');
    expect(server.attributes).toMatchObject({ 'http.route': '/_matrix/federation/v1/send/:txnId', 'url.path': '/_matrix/federation/v1/send/t1', 'http.response.status_code': 200, 'fedgate.listener': 'federation' });
    expect(server.spanContext().traceId).not.toBe(REMOTE_TRACE);
    expect(server.parentSpanContext).toBeUndefined();
    const inner = spans.getFinishedSpans().find((s) => s.name === 'inner work')!;
    expect(inner.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(inner.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
  });

  it('client-server listener: the chat platform’s traceparent is continued', async () => {
    await put(await start('client-server', true));
    const server = spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.spanContext().traceId).toBe(REMOTE_TRACE);
  });
});
