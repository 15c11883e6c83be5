// Work that waits in a durable queue (a destination's egress queue, an application service's push queue)
// leaves the span that queued it; the request that finally carries it (one transaction, many items) would
// start a trace of its own. This remembers each item's trace, so that request joins the trace of its first
// item and links to the traces of the others.
import { ROOT_CONTEXT, SpanKind, trace, isSpanContextValid, type Attributes, type Link, type SpanContext } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import { endSpanAfter } from '@fedgate/bus';

const tracer = () => trace.getTracer('@fedgate/queues');

/** Links on one span at most: a transaction of 50 PDUs and 100 EDUs gets the first ones. */
const MAX_LINKS = 32;

export class QueuedWorkTraces {
  // Bounded: items of a destination that stays down are sent (if ever) without their trace, not kept forever.
  private readonly traces: LRUCache<string, SpanContext>;

  constructor(maxItems = 10_000) {
    this.traces = new LRUCache({ max: maxItems });
  }

  /** Records the active trace for an item being queued (nothing outside a span). */
  remember(key: string): void {
    const spanContext = trace.getActiveSpan()?.spanContext();
    if (spanContext && isSpanContextValid(spanContext)) this.traces.set(key, spanContext);
  }

  /**
   * Runs `work` (the request carrying the items) in an internal span whose parent is the first remembered
   * item's trace and which links to the other items' traces; a root span when none is remembered (the items
   * were queued before a restart).
   */
  async inSpanOf<R>(name: string, keys: readonly string[], attributes: Attributes, work: () => Promise<R>): Promise<R> {
    const known = [...new Set(keys)].map((key) => this.traces.get(key)).filter((s): s is SpanContext => s !== undefined);
    const [first, ...others] = known;
    const parent = first ? trace.setSpanContext(ROOT_CONTEXT, first) : ROOT_CONTEXT;
    const links: Link[] = others.slice(0, MAX_LINKS).map((spanContext) => ({ context: spanContext }));
    return tracer().startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes: { ...attributes, 'fedgate.items': keys.length }, links }, parent, (span) => endSpanAfter(span, work));
  }

  /** The items were delivered or given up: their traces are no longer needed. */
  forget(keys: readonly string[]): void {
    for (const key of keys) this.traces.delete(key);
  }
}
