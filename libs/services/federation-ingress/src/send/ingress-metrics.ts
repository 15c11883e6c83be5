// Counters of what ingress turned away before any work: room EDUs left out and requests over the per-origin
// rate limits. Labels are closed sets (EDU type, reason, limit name), never origins or room IDs, so the
// series count stays fixed however many servers call.
import { Inject, Injectable, Optional } from '@nestjs/common';
import { METRICS_REGISTRY } from '@fedgate/platform';
import { Counter, Registry } from 'prom-client';

@Injectable()
export class IngressMetrics {
  readonly edusDropped: Counter<'edu_type' | 'reason'>;
  readonly rateLimited: Counter<'limit'>;
  readonly unavailable: Counter<'part'>;

  constructor(@Optional() @Inject(METRICS_REGISTRY) registry?: Registry) {
    const target = registry ?? new Registry();
    // One registry may serve two ingress apps of one process: share the counters then.
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      (target.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [target] });
    this.edusDropped = counter('fedgate_federation_edus_dropped_total', 'Room EDUs (or receipt rooms) left out, by reason', ['edu_type', 'reason']);
    this.rateLimited = counter('fedgate_federation_rate_limited_total', 'Federation requests refused or slowed by a per-origin limit', ['limit']);
    this.unavailable = counter('fedgate_federation_unavailable_total', 'Transactions answered 503 because our bus or store failed (part)', ['part']);
  }

  async count(counter: Counter, labels: Record<string, string>): Promise<number> {
    const values = (await counter.get()).values;
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  }
}
