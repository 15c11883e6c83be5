// The prev_events DAG helpers: parents-first order, depths, forward extremities.
import { computeDepths, forwardExtremities, topologicalOrder } from './dag';
import { toRoomEvent, type RoomEvent } from './event';

/** `id` with its prev events; ts defaults to 0 and depth to absent so the tie-breaks under test are explicit. */
function e(id: string, prevs: string[] = [], extra: { ts?: number; depth?: number } = {}): RoomEvent {
  return toRoomEvent({ event_id: id, room_id: '!r:a', sender: '@u:a', type: 'm.room.message', content: {}, prev_events: prevs, auth_events: [], origin_server_ts: extra.ts ?? 0, depth: extra.depth });
}

const ids = (events: readonly RoomEvent[]) => events.map((x) => x.event_id);

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** Every edge goes parent → child in `order`, for parents that are in the list. */
function respectsEdges(order: readonly RoomEvent[]): boolean {
  const position = new Map(order.map((x, i) => [x.event_id, i]));
  return order.every((x, i) => x.prev_events.every((p) => !position.has(p) || position.get(p)! < i));
}

// A: root; B, C fork from A; D merges B and C; E hangs off C.
const diamond = () => [e('$D', ['$B', '$C'], { ts: 4 }), e('$C', ['$A'], { ts: 2 }), e('$E', ['$C'], { ts: 5 }), e('$B', ['$A'], { ts: 3 }), e('$A', [], { ts: 1 })];

describe('topologicalOrder', () => {
  it.each<[string, () => RoomEvent[], string[], { useGivenDepth?: boolean }?]>([
    ['a chain given newest first', () => [e('$3', ['$2']), e('$2', ['$1']), e('$1')], ['$1', '$2', '$3']],
    ['a diamond with a side branch: ready events by origin_server_ts', diamond, ['$A', '$C', '$B', '$D', '$E']],
    ['ties on depth and ts fall to the event ID (code unit order)', () => [e('$b', ['$root']), e('$B', ['$root']), e('$a', ['$root']), e('$root')], ['$root', '$B', '$a', '$b']],
    ['given depth comes before ts', () => [e('$x', ['$r'], { depth: 2, ts: 1 }), e('$y', ['$r'], { depth: 1, ts: 9 }), e('$r', [], { depth: 0 })], ['$r', '$y', '$x']],
    ['given depth ignored on request', () => [e('$x', ['$r'], { depth: 2, ts: 1 }), e('$y', ['$r'], { depth: 1, ts: 9 }), e('$r', [], { depth: 0 })], ['$r', '$x', '$y'], { useGivenDepth: false }],
    ['edges win over a depth that contradicts them', () => [e('$child', ['$parent'], { depth: 1 }), e('$parent', [], { depth: 5 })], ['$parent', '$child']],
    ['prev events outside the list are ignored (their children are roots)', () => [e('$late', ['$gone'], { ts: 2 }), e('$early', ['$missing'], { ts: 1 }), e('$next', ['$late', '$gone'], { ts: 3 })], ['$early', '$late', '$next']],
    ['a prev event named twice counts once', () => [e('$c', ['$p', '$p']), e('$p')], ['$p', '$c']],
    ['no events', () => [], []],
  ])('%s', (_name, events, expected, opts = {}) => {
    const order = topologicalOrder(events(), opts);
    expect(ids(order)).toEqual(expected);
    expect(respectsEdges(order)).toBe(true);
  });

  it('gives the same order whatever order the events come in', () => {
    const events = [...diamond(), e('$F', ['$A'], { ts: 2 }), e('$G', ['$F', '$E'], { ts: 4 })];
    const expected = ids(topologicalOrder(events));
    expect(respectsEdges(topologicalOrder(events))).toBe(true);
    for (const shuffled of permutations(events)) expect(ids(topologicalOrder(shuffled))).toEqual(expected);
  });

  it.each<[string, () => RoomEvent[], number]>([
    ['two events naming each other', () => [e('$a', ['$b']), e('$b', ['$a'])], 2],
    ['an event naming itself', () => [e('$self', ['$self'])], 1],
    ['a cycle below a sound root, with a descendant', () => [e('$root'), e('$a', ['$root', '$c']), e('$b', ['$a']), e('$c', ['$b']), e('$after', ['$c'])], 4],
  ])('throws on a cycle: %s', (_name, events, stuck) => {
    expect(() => topologicalOrder(events())).toThrow(`prev_events form a cycle among ${stuck} events`);
  });
});

describe('computeDepths', () => {
  it.each<[string, () => RoomEvent[], Record<string, number>]>([
    ['a root is 0, each child one more than its deepest parent', () => [e('$m', ['$a', '$c']), e('$c', ['$b']), e('$b', ['$a']), e('$a')], { $a: 0, $b: 1, $c: 2, $m: 3 }],
    ['given depths are kept, and children count from them', () => [e('$child', ['$given']), e('$given', [], { depth: 10 })], { $given: 10, $child: 11 }],
    ['a given depth is kept even when its parents are deeper', () => [e('$p', [], { depth: 7 }), e('$c', ['$p'], { depth: 3 })], { $p: 7, $c: 3 }],
    ['prev events outside the list do not count', () => [e('$orphan', ['$unknown']), e('$kid', ['$orphan', '$unknown'])], { $orphan: 0, $kid: 1 }],
    ['forks at the same depth', () => [e('$a'), e('$x', ['$a']), e('$y', ['$a']), e('$z', ['$y'])], { $a: 0, $x: 1, $y: 1, $z: 2 }],
  ])('%s', (_name, events, expected) => {
    expect(Object.fromEntries(computeDepths(events()))).toEqual(expected);
  });

  it('throws on a cycle like topologicalOrder', () => {
    expect(() => computeDepths([e('$a', ['$b']), e('$b', ['$a'])])).toThrow(/cycle/);
  });
});

describe('forwardExtremities', () => {
  // include: which events may be extremities (e.g. accepted, not soft failed). Expected IDs in input order.
  it.each<[string, () => RoomEvent[], string[], string[]?]>([
    ['a chain: its newest event', () => [e('$1'), e('$2', ['$1']), e('$3', ['$2'])], ['$3']],
    ['a fork: both tips', () => [e('$A'), e('$B', ['$A']), e('$C', ['$A'])], ['$B', '$C']],
    ['a merge: the merging event', () => [e('$A'), e('$B', ['$A']), e('$C', ['$A']), e('$M', ['$B', '$C'])], ['$M']],
    ['a three-way fork, two tips merged', () => [e('$A'), e('$B', ['$A']), e('$C', ['$A']), e('$D', ['$A']), e('$M', ['$B', '$C'])], ['$D', '$M']],
    ['a diamond with a side branch', diamond, ['$D', '$E']],
    ['prev events outside the list change nothing', () => [e('$x', ['$unknown']), e('$y', ['$x', '$other'])], ['$y']],
    ['no events', () => [], []],
    ['an excluded tip leaves its parent an extremity', () => [e('$A'), e('$B', ['$A'])], ['$A'], ['$B']],
    ['excluded forks leave the parent the only extremity', () => [e('$A'), e('$B', ['$A']), e('$C', ['$A']), e('$X', ['$A'])], ['$B', '$C'], ['$X']],
    ['an included event built on an excluded one covers what that one built on', () => [e('$A'), e('$B', ['$A']), e('$C', ['$B'])], ['$C'], ['$B']],
    ['coverage runs through several excluded events', () => [e('$A'), e('$B', ['$A']), e('$B2', ['$B']), e('$C', ['$B2']), e('$D', ['$A'])], ['$C'], ['$B', '$B2', '$D']],
    ['an excluded event built on by another excluded event only still covers nothing', () => [e('$A'), e('$B', ['$A']), e('$B2', ['$B'])], ['$A'], ['$B', '$B2']],
  ])('%s', (_name, events, expected, excluded = []) => {
    const skip = new Set(excluded);
    expect(ids(forwardExtremities(events(), (x) => !skip.has(x.event_id)))).toEqual(expected);
  });
});
