// Policy server decisions per rule and outcome. Rule labels come only from the policy file (its rule IDs),
// the engine's `default`, and the fixed refusals below, so the series count is bounded by the operator.
import { Inject, Injectable, Optional } from '@nestjs/common';
import { METRICS_REGISTRY } from '@fedgate/platform';
import { Counter, Registry } from 'prom-client';

/** Refusals made before any rule is looked at. */
export const PRE_POLICY_RULES = ['invalid_event', 'not_protected', 'server_acl', 'unsigned_event', 'foreign_references'] as const;

@Injectable()
export class PolicyMetrics {
  readonly decisions: Counter<'rule' | 'outcome'>;
  readonly reloads: Counter<'outcome'>;

  constructor(@Optional() @Inject(METRICS_REGISTRY) registry?: Registry) {
    const target = registry ?? new Registry();
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      (target.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [target] });
    this.decisions = counter('fedgate_policy_decisions_total', 'Events this policy server signed or refused, by the rule that decided', ['rule', 'outcome']);
    this.reloads = counter('fedgate_policy_reloads_total', 'Policy file changes applied or refused', ['outcome']);
  }

  async count(rule: string, outcome: string): Promise<number> {
    const values = (await this.decisions.get()).values;
    return values.filter((v) => v.labels.rule === rule && v.labels.outcome === outcome).reduce((sum, v) => sum + v.value, 0);
  }
}
