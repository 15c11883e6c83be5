// `--trace`: a minimal OTLP/HTTP (JSON) receiver the fedgate targets export their spans to, so a load run can print
// where the wall time of one request went — the client-server span, the bus hops, each federation request (with its
// connect), and the phases state-resolver marks — as a timeline from the request's start.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: { key: string; value: OtlpValue }[];
}
interface OtlpExport {
  resourceSpans?: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

const valueOf = (v: OtlpValue): string | number | boolean => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ''));
const nanosToMs = (n: string | number) => Number(BigInt(n) / 1000n) / 1000;

function spansOf(body: OtlpExport): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  for (const resource of body.resourceSpans ?? []) {
    const service = String(valueOf(resource.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? {}) || '?');
    for (const scope of resource.scopeSpans ?? []) {
      for (const s of scope.spans ?? []) {
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          service,
          startMs: nanosToMs(s.startTimeUnixNano),
          endMs: nanosToMs(s.endTimeUnixNano),
          attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, valueOf(a.value)])),
        });
      }
    }
  }
  return spans;
}

/** A W3C `traceparent` for a new trace (sampled): its trace ID, and the caller's span ID the target's root span names as parent. */
export function newTraceParent(): { traceparent: string; traceId: string; callerSpanId: string } {
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  return { traceparent: `00-${traceId}-${callerSpanId}-01`, traceId, callerSpanId };
}

export class SpanCollector {
  private constructor(
    private readonly server: Server,
    /** Exports as received, turned into spans when read. */
    private readonly received: OtlpExport[],
  ) {}

  static async start(): Promise<SpanCollector> {
    const received: OtlpExport[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const raw = Buffer.concat(chunks);
          received.push(JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')) as OtlpExport);
        } catch {
          // a malformed export is ignored: the timeline just lacks it
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const collector = new SpanCollector(server, received);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return collector;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
  }

  private get spans(): CollectedSpan[] {
    return this.received.flatMap(spansOf);
  }

  /** The spans of one trace collected so far (exporters batch: see `waitForRoot`). */
  trace(traceId: string): CollectedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId).sort((a, b) => a.startMs - b.startMs || b.endMs - a.endMs);
  }

  /** Until the trace holds the target's root span (the caller's child: it ends last, so is exported last) or `timeoutMs` passes. */
  async waitForRoot(traceId: string, callerSpanId: string, timeoutMs = 15_000): Promise<CollectedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.trace(traceId).some((s) => s.parentSpanId === callerSpanId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    return this.trace(traceId);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One line per span: start offset from the first span, duration, depth-indented name, and what it touched. */
export function timeline(spans: readonly CollectedSpan[]): string[] {
  if (spans.length === 0) return ['(no spans)'];
  const origin = Math.min(...spans.map((s) => s.startMs));
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = (s: CollectedSpan): number => {
    let d = 0;
    for (let p = s.parentSpanId && byId.get(s.parentSpanId); p; p = p.parentSpanId ? byId.get(p.parentSpanId) : undefined) d++;
    return d;
  };
  const shown = ['server.address', 'http.response.status_code', 'fedgate.events', 'fedgate.detail'];
  return spans.map((s) => {
    const extra = shown.filter((k) => s.attributes[k] !== undefined).map((k) => `${k.split('.').pop()}=${s.attributes[k]}`);
    return `${(s.startMs - origin).toFixed(1).padStart(8)} ms +${(s.endMs - s.startMs).toFixed(1).padStart(7)} ms  ${'  '.repeat(depth(s))}${s.name} [${s.service}]${extra.length ? ` ${extra.join(' ')}` : ''}`;
  });
}

/** The spans that started before the trace's root ended (the root included): what the answer waited on, not the work it set off. */
export function untilAnswered(spans: readonly CollectedSpan[]): CollectedSpan[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  if (roots.length === 0) return [];
  const answeredMs = Math.max(...roots.map((r) => r.endMs));
  return spans.filter((s) => s.startMs < answeredMs);
}
