// The state at one event of a room, asked of one server: /state_ids, then the events we lack one by one with
// /event, or all at once with /state when many are missing; everything imported as outliers (verified, checked
// against its own auth events). Events of another room named in the answer, and every event refused, are audited.
// Used to fill a gap (inbound PDUs) and to complete a partial-state join.
import type { FederationApi } from '@fedgate/federation-client';
import type { RoomVersionRules } from '@fedgate/protocol';
import type { Store } from '@fedgate/store';
import type { EventGraph } from './event-graph';
import { OutlierImporter } from './outliers';
import { auditRefused } from './refused-events';

export interface StateAtFetchDeps {
  api: FederationApi;
  store: Store;
  importer: OutlierImporter;
  /** Ours, for the audit records. */
  serverName: string;
  /** Above this many missing events, one /state instead of an /event each. */
  maxSingleFetches: number;
}

export interface FetchedStateAt {
  /** The state's event IDs as `server` gave them (/state_ids `pdu_ids`). */
  stateIds: readonly string[];
  /** The state, auth chain (and with `withEvent`, the event) loaded. */
  graph: EventGraph;
  /** IDs the answer named that are events of another room (refused, audited). */
  foreign: string[];
  /** The /state_ids path, for the caller's own audit records. */
  path: string;
}

/** `withEvent`: the event itself is also needed (we lack it), not only the state at it. */
export async function fetchStateAt(deps: StateAtFetchDeps, server: string, roomId: string, eventId: string, rules: RoomVersionRules, withEvent: boolean): Promise<FetchedStateAt> {
  const path = `/_matrix/federation/v1/state_ids/${roomId}`;
  const ids = await deps.api.stateIds(server, roomId, eventId);
  const needed = [...new Set([...(withEvent ? [eventId] : []), ...ids.pdu_ids, ...ids.auth_chain_ids])];
  const missing = await deps.store.events.missing(needed);
  let pdus: Record<string, unknown>[] = [];
  if (missing.length > deps.maxSingleFetches) {
    const state = await deps.api.state(server, roomId, eventId);
    pdus = [...state.pdus, ...state.auth_chain];
    if (withEvent && missing.includes(eventId)) pdus.push(await deps.api.event(server, eventId));
  } else {
    for (const id of missing) pdus.push(await deps.api.event(server, id));
  }
  const { graph, refused } = await deps.importer.import(pdus, rules, roomId, new Set(needed));
  await graph.load(needed);
  const foreign = OutlierImporter.otherRooms(needed, graph, roomId);
  for (const id of foreign) refused.push({ ok: false, eventId: id, problem: 'invalid', errcode: 'M_BAD_JSON', reason: `named in the state at ${eventId} but ${id} is an event of another room` });
  await auditRefused(deps.store, deps.serverName, server, 'GET', path, refused);
  return { stateIds: ids.pdu_ids, graph, foreign, path };
}
