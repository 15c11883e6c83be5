// Builds the events of a synapse-state-v2-scenarios.json case by that file's harness recipe.
import { roomVersionRules } from '@fedgate/protocol';
import { authTypesForEvent } from '../auth-types';
import { stateMapKey, type RoomEvent, type StateMap } from '../event';
import { resolveStateV2 } from '../state-res-v2';

export interface ScenarioEvent {
  id: string;
  event_id: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
  state_key?: string;
}

export interface ScenarioCase {
  name: string;
  events: ScenarioEvent[];
  expected_state_ids: string[];
  processing_order: string[];
  prev_events_by_id: Record<string, string[]>;
  origin_server_ts_by_id: Record<string, number>;
}

export interface ScenarioFile {
  room_id: string;
  initial_events: ScenarioEvent[];
  cases: ScenarioCase[];
}

export interface BuiltScenario {
  events: RoomEvent[];
  stateAfter: Map<string, StateMap>;
  /** The expected delta: (type, state_key) key → event ID. */
  expected: Map<string, string>;
  /** The recipe's assertion view of state_after(END). */
  actual: Map<string, string>;
}

export function buildScenario(file: ScenarioFile, c: ScenarioCase): BuiltScenario {
  const rules = roomVersionRules('2');
  const specs = new Map<string, ScenarioEvent>();
  for (const e of [...file.initial_events, ...c.events]) specs.set(e.id, e);
  const byId = new Map<string, RoomEvent>();
  const lookup = (id: string) => byId.get(id);
  const stateAfter = new Map<string, StateMap>();
  const events: RoomEvent[] = [];
  for (const id of c.processing_order) {
    const spec = specs.get(id)!;
    const prevs = c.prev_events_by_id[id].map((p) => specs.get(p)!.event_id);
    const prevStates = prevs.map((p) => stateAfter.get(p)!);
    const before: StateMap = prevStates.length === 0 ? new Map() : prevStates.length === 1 ? prevStates[0] : resolveStateV2(prevStates, { rules, lookup });
    const auth: string[] = [];
    for (const ref of authTypesForEvent(spec as unknown as RoomEvent, rules)) {
      const found = before.get(stateMapKey(ref.type, ref.state_key));
      if (found !== undefined && !auth.includes(found)) auth.push(found);
    }
    const event: RoomEvent = {
      event_id: spec.event_id,
      room_id: file.room_id,
      sender: spec.sender,
      type: spec.type,
      state_key: spec.state_key,
      content: spec.content as RoomEvent['content'],
      prev_events: prevs,
      auth_events: auth,
      origin_server_ts: c.origin_server_ts_by_id[id],
    };
    if (event.state_key === undefined) delete (event as { state_key?: string }).state_key;
    byId.set(event.event_id, event);
    events.push(event);
    const after = new Map(before);
    if (event.state_key !== undefined) after.set(stateMapKey(event.type, event.state_key), event.event_id);
    stateAfter.set(event.event_id, after);
  }
  const expected = new Map<string, string>();
  for (const id of c.expected_state_ids) {
    const s = specs.get(id)!;
    expected.set(stateMapKey(s.type, s.state_key!), s.event_id);
  }
  const start = stateAfter.get(specs.get('START')!.event_id)!;
  const end = stateAfter.get(specs.get('END')!.event_id)!;
  const actual = new Map<string, string>();
  for (const [k, v] of end) if (expected.has(k) || start.get(k) !== v) actual.set(k, v);
  return { events, stateAfter, expected, actual };
}
