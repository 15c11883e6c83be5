// One entry point for state resolution; the room version picks the algorithm.
import type { StateMap } from './event';
import { assertStateSetsInRoom, roomOfStateSets, roomScopedLookup } from './room-guard';
import { resolveStateV1 } from './state-res-v1';
import { resolveStateV2, type ResolveOptions } from './state-res-v2';

/**
 * Resolves the state sets of one room (`opts.roomId`, else the room of the first known event). Throws
 * ForeignEventError when an event of another room is in a state set or reached through an auth chain.
 */
export function resolveState(stateSets: readonly StateMap[], opts: ResolveOptions): Map<string, string> {
  const roomId = roomOfStateSets(stateSets, opts.lookup, opts.roomId);
  let scoped = opts;
  if (roomId !== undefined) {
    assertStateSetsInRoom(stateSets, opts.lookup, roomId);
    scoped = { ...opts, lookup: roomScopedLookup(opts.lookup, roomId) };
  }
  return scoped.rules.stateResolution === 'v1' ? resolveStateV1(stateSets, scoped) : resolveStateV2(stateSets, scoped);
}
