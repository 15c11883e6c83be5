// gomatrixserverlib's unit-level state resolution data (../shared/vectors/gomatrixserverlib-stateres-units.json).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { roomVersionRules } from '@fedgate/protocol';
import { authChain, conflictedStateSubgraph } from './auth-chain';
import { toRoomEvent, type RoomEvent } from './event';
import { reverseTopologicalPowerOrder } from './state-res-v2';

const vectors = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'vectors');
const units = JSON.parse(readFileSync(path.join(vectors, 'gomatrixserverlib-stateres-units.json'), 'utf8'));
const rules = roomVersionRules('2');

function lookupOf(events: RoomEvent[]) {
  const byId = new Map(events.map((e) => [e.event_id, e]));
  return (id: string) => byId.get(id);
}

describe('gomatrixserverlib state resolution units', () => {
  it('lexicographical power sort: power desc, then origin_server_ts asc, then event_id asc', () => {
    const input: Array<{ event_id: string; power_level: number; origin_server_ts: number }> = units.lexicographical_power_sort.input;
    const create = toRoomEvent({ event_id: '$create', room_id: '!r:x', sender: '@creator:x', type: 'm.room.create', state_key: '', content: { creator: '@creator:x' } });
    const pl = toRoomEvent({
      event_id: '$pl', room_id: '!r:x', sender: '@creator:x', type: 'm.room.power_levels', state_key: '',
      content: { users: Object.fromEntries(input.map((i) => [`@${i.event_id}:x`, i.power_level])) }, auth_events: ['$create'],
    });
    const events = input.map((i) => toRoomEvent({ event_id: i.event_id, room_id: '!r:x', sender: `@${i.event_id}:x`, type: 'm.room.topic', state_key: '', content: {}, origin_server_ts: i.origin_server_ts, auth_events: ['$create', '$pl'] }));
    const order = reverseTopologicalPowerOrder(events, lookupOf([create, pl, ...events]), rules);
    expect(order.map((e) => e.event_id)).toEqual(units.lexicographical_power_sort.expected);
  });

  it('reverse topological power ordering by auth events', () => {
    const events: RoomEvent[] = units.reverse_topological_by_auth_events.events.map((e: Record<string, unknown>) => toRoomEvent({ ...e, room_id: '!r:example.com' }));
    const shuffled = [...events].reverse();
    expect(reverseTopologicalPowerOrder(shuffled, lookupOf(events), rules).map((e) => e.event_id)).toEqual(units.reverse_topological_by_auth_events.expected);
  });

  const graph: Record<string, string[]> = units.auth_graph;
  const graphEvents = Object.entries(graph).map(([id, auth]) => toRoomEvent({ event_id: id, sender: '@a:x', type: 'm.room.member', state_key: '@a:x', content: {}, auth_events: auth }));
  const lookup = lookupOf(graphEvents);
  const sorted = (s: Iterable<string>) => [...s].sort();

  type ChainCase = { name: string; start: string[]; conflicted: string[]; want_auth_chain: string[]; want_conflicted_subgraph: string[] };
  const cases = (list: ChainCase[]): Array<[string, ChainCase]> => list.map((c) => [c.name, c]);

  it.each(cases(units.full_auth_chain_v2_0))('v2.0 auth chain: %s', (_n, c) => {
    expect(sorted(authChain(c.start, lookup))).toEqual(sorted(c.want_auth_chain));
  });

  it.each(cases(units.full_auth_chain_and_conflicted_subgraph_v2_1))(
    'v2.1 auth chain and conflicted state subgraph: %s',
    (_n, c) => {
      expect(sorted(authChain(c.start, lookup))).toEqual(sorted(c.want_auth_chain));
      expect(sorted(conflictedStateSubgraph(c.conflicted, lookup))).toEqual(sorted(c.want_conflicted_subgraph));
    },
  );
});
