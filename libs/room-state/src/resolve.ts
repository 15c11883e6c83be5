// One entry point for state resolution; the room version picks the algorithm.
import type { StateMap } from './event';
import { resolveStateV1 } from './state-res-v1';
import { resolveStateV2, type ResolveOptions } from './state-res-v2';

export function resolveState(stateSets: readonly StateMap[], opts: ResolveOptions): Map<string, string> {
  return opts.rules.stateResolution === 'v1' ? resolveStateV1(stateSets, opts) : resolveStateV2(stateSets, opts);
}
