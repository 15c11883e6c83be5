// Issue 19: the bus asked the global provider for its tracer on every message (~1% of the gateway's CPU).
import { trace, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { tracer } from './tracing';

function countingProvider(): { provider: TracerProvider; asked: () => number; tracer: Tracer } {
  let asked = 0;
  const made = { startSpan: () => undefined, startActiveSpan: () => undefined } as unknown as Tracer;
  return {
    provider: {
      getTracer: () => {
        asked++;
        return made;
      },
    },
    asked: () => asked,
    tracer: made,
  };
}

describe('the bus tracer (issue 19)', () => {
  afterEach(() => trace.disable());

  it('is asked of the provider once per provider, and a provider registered later is used', () => {
    const first = countingProvider();
    trace.setGlobalTracerProvider(first.provider);
    for (let i = 0; i < 10; i++) expect(tracer()).toBe(first.tracer);
    expect(first.asked()).toBe(1);
    trace.disable();
    const second = countingProvider();
    trace.setGlobalTracerProvider(second.provider);
    expect(tracer()).toBe(second.tracer);
    expect(second.asked()).toBe(1);
  });
});
