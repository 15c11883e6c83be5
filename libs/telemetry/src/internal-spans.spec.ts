// Phase spans share the bus's span-ending helpers (review5 folded the copies): success ends the span with the
// result's attributes; a failure is recorded on the span (exception event, ERROR status) and rethrown.
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { startPhaseSpan, withPhaseSpan } from './internal-spans';
import { setupTracing, type Tracing } from './tracing';

describe('phase spans', () => {
  const spans = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(() => {
    tracing = setupTracing({ service: 'phase-spans-test', exporters: [spans] });
  });
  afterAll(() => tracing.shutdown());
  beforeEach(() => spans.reset());
  const ended = (name: string) => spans.getFinishedSpans().find((s) => s.name === name)!;

  it('withPhaseSpan ends the span with the attributes the result gives', async () => {
    expect(await withPhaseSpan('verify answer', async () => 3, (n) => ({ 'fedgate.count': n }))).toBe(3);
    expect(ended('verify answer').attributes).toMatchObject({ 'fedgate.count': 3 });
    expect(ended('verify answer').status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('withPhaseSpan records a failure on the span and rethrows it', async () => {
    await expect(withPhaseSpan('commit join', async () => Promise.reject(new Error('no quorum')))).rejects.toThrow('no quorum');
    const span = ended('commit join');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no quorum' });
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('startPhaseSpan records the error it ends with', () => {
    startPhaseSpan('connect', { 'server.address': 'x' }).end(new Error('refused'));
    startPhaseSpan('connect ok').end(null);
    expect(ended('connect').status).toEqual({ code: SpanStatusCode.ERROR, message: 'refused' });
    expect(ended('connect ok').events).toEqual([]);
  });
});
