// Issue 12, observability: traces showed the bus hops but no span for the incoming `PUT /send`, the outgoing
// one, or the push to the application service. A distributed fedgate (four processes) exports its spans to a
// stand-in OTLP collector on loopback, which keeps them in memory; one PDU in and one message out must each
// be one trace across the processes.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stateMapKey } from '@fedgate/room-state';
import { createTestCa, eventually, MaliciousHttpsServer, startFedgate, startTogether, type FedgateInstance } from '@fedgate/testing';

jest.setTimeout(120_000);

interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
}

/** OTLP/HTTP JSON in, spans kept in memory: the in-memory exporter of a test that spans four processes. */
async function startCollector(): Promise<{ url: string; spans: CollectedSpan[]; close(): Promise<void> }> {
  const spans: CollectedSpan[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = resourceSpans.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            const attributes = Object.fromEntries(
              (span.attributes ?? []).map((a: { key: string; value: Record<string, unknown> }) => [a.key, Object.values(a.value)[0] as string | number | boolean]),
            );
            spans.push({ service, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId || undefined, name: span.name, kind: span.kind, attributes });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, spans, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

// OTLP span kinds.
const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

describe('one trace per event across the distributed services (issue 12)', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let fedgate: FedgateInstance;
  let evil: MaliciousHttpsServer;
  let alice: string;

  beforeAll(async () => {
    collector = await startCollector();
    const ca = createTestCa();
    [fedgate, evil] = await startTogether([
      startFedgate({ shape: 'distributed', ca, name: 'trc', config: { telemetry: { otlpEndpoint: collector.url } } }),
      MaliciousHttpsServer.start(ca),
    ] as const);
    alice = await fedgate.bridge!.registerVirtualUser('trcchat_alice');
  }, 240_000);
  afterAll(async () => {
    await evil?.stop();
    await fedgate?.destroy();
    await collector?.close();
  }, 60_000);

  const spansOf = (traceId: string) => collector.spans.filter((s) => s.traceId === traceId);

  it('one inbound PDU: the /send server span in ingress, the state-resolver consumer span and the push to the application service share a trace', async () => {
    const roomId = (await fedgate.bridge!.asUser(alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never)).room_id;
    const joined = await evil.joinRoom(fedgate.serverName, roomId);
    const message = evil.evil.sign(
      {
        room_id: roomId,
        sender: evil.evil.user('mallory'),
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'traced in' },
        prev_events: [joined.join.eventId],
        auth_events: [joined.state.get(stateMapKey('m.room.create', ''))!, joined.state.get(stateMapKey('m.room.power_levels', ''))!, joined.join.eventId],
        depth: 100,
      },
      joined.roomVersion,
    );
    const txnId = `traced-${Date.now()}`;
    expect((await evil.sendPdus(fedgate.serverName, [message], txnId)).status).toBe(200);
    await fedgate.bridge!.waitForEvent((e) => e.event_id === message.eventId, 30_000);

    // Spans leave each process in batches (every 5 s): wait for the whole path.
    const inbound = await eventually(
      async () => collector.spans.find((s) => s.kind === SERVER && s.name === 'PUT /_matrix/federation/v1/send/:txnId' && String(s.attributes['url.path']).endsWith(`/${txnId}`)),
      (s) => s !== undefined,
    );
    expect(inbound).toMatchObject({ service: 'fedgate-federation-ingress', attributes: { 'http.response.status_code': 200 } });
    // The remote's traceparent is never a parent: the /send span starts the trace.
    expect(inbound!.parentSpanId).toBeUndefined();
    const trace = await eventually(
      async () => spansOf(inbound!.traceId),
      (spans) => spans.some((s) => s.service === 'fedgate-chat-sync' && s.kind === CLIENT && s.name.startsWith('PUT /_matrix/app/v1/transactions')),
    );
    // Egress reads the room log too (and finds no one else to send to): it may be in the trace as well.
    expect([...new Set(trace.map((s) => s.service))]).toEqual(expect.arrayContaining(['fedgate-chat-sync', 'fedgate-federation-ingress', 'fedgate-state-resolver']));
    expect(trace.some((s) => s.service === 'fedgate-state-resolver' && s.kind === CONSUMER && s.name.includes('.inbound.pdu.'))).toBe(true);
    const push = trace.find((s) => s.kind === CLIENT && s.name.startsWith('PUT /_matrix/app/v1/transactions'))!;
    expect(push.attributes).toMatchObject({ 'http.response.status_code': 200, 'fedgate.appservice': 'bridge-trc' });
    // Every span but the first has its parent in the same trace: one tree, not pieces.
    const ids = new Set(trace.map((s) => s.spanId));
    expect(trace.filter((s) => s.parentSpanId !== undefined && !ids.has(s.parentSpanId))).toEqual([]);
  });

  it('one outbound message: the egress client span of PUT /send names the destination, in the trace of the bridge request that sent it', async () => {
    const roomId = (await fedgate.bridge!.asUser(alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never)).room_id;
    await evil.joinRoom(fedgate.serverName, roomId);
    const { event_id: eventId } = await fedgate.bridge!.asUser(alice).sendMessage(roomId, { msgtype: 'm.text', body: 'traced out' } as never);
    await eventually(
      async () => evil.transactions.some((t) => t.pdus.some((p) => (p.content as { body?: string } | undefined)?.body === 'traced out')),
      (delivered) => delivered,
    );

    const egress = await eventually(
      async () => collector.spans.find((s) => s.service === 'fedgate-federation-egress' && s.name === 'federation-egress transaction' && s.attributes['fedgate.destination'] === evil.name && spansOf(s.traceId).some((c) => c.kind === SERVER && String(c.attributes['url.path']).includes('/send/m.room.message/'))),
      (s) => s !== undefined,
    );
    const trace = spansOf(egress!.traceId);
    const send = trace.find((s) => s.kind === CLIENT && s.name === 'PUT /_matrix/federation/v1/send/…');
    expect(send).toMatchObject({ service: 'fedgate-federation-egress', parentSpanId: egress!.spanId, attributes: { 'server.address': evil.name, 'http.response.status_code': 200 } });
    const request = trace.find((s) => s.kind === SERVER);
    expect(request).toMatchObject({ service: 'fedgate-chat-sync', name: 'PUT /_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId' });
    expect(eventId).toMatch(/^\$/);
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['fedgate-chat-sync', 'fedgate-state-resolver', 'fedgate-federation-egress']));
  });
});
