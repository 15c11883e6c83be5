// Spans around in-process phases of one request (verifying an answer, committing a join), so a trace shows where
// the time between two hops went. Cheap when nothing exports: the span is created and ended, nothing more.
import { endSpanAfter, recordSpanError } from '@fedgate/bus';
import { trace, type Attributes } from '@opentelemetry/api';

const tracer = () => trace.getTracer('@fedgate/phases');

/** Runs `work` in an internal span `name`, child of the active context; `attributesOf` adds what the result says. */
export async function withPhaseSpan<R>(name: string, work: () => Promise<R>, attributesOf?: (result: R) => Attributes): Promise<R> {
  return tracer().startActiveSpan(name, (span) =>
    endSpanAfter(span, async () => {
      const result = await work();
      if (attributesOf) span.setAttributes(attributesOf(result));
      return result;
    }),
  );
}

/** A phase that ends in a callback (a socket connecting): started now, under the active context; `end` once. */
export function startPhaseSpan(name: string, attributes: Attributes = {}): { end(error?: Error | null): void } {
  const span = tracer().startSpan(name, { attributes });
  return {
    end(error) {
      if (error) recordSpanError(span, error);
      span.end();
    },
  };
}
