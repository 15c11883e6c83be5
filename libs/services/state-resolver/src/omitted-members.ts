// send_join v2 with `omit_members=true` (resident side): the state before the join without the room's
// membership events but for those the joiner needs — its own earlier membership, the restricted join's
// authoriser, and the heroes a client names an unnamed room after — and the auth chain of what is kept,
// less the events already in `state`.
import { authClosure, domainOf, stateMapKey } from '@fedgate/room-state';
import type { RoomEvent } from '@fedgate/room-state';
import type { EventGraph } from './event-graph';

const MEMBER_PREFIX = 'm.room.member\u0000';
/** As many heroes as the client-server room summary names (`m.heroes`). */
export const HERO_COUNT = 5;

export interface ReducedJoinState {
  /** Event IDs to serve as `state`. */
  stateIds: string[];
  /** Event IDs to serve as `auth_chain` (none of them in `stateIds`). */
  authChainIds: string[];
}

/**
 * `before`: the state before the join (key → event ID); `join`: the join event (in `graph`). The graph must hold
 * the kept state's auth closure, and every membership event of `before` when the room has neither a name nor a
 * canonical alias (the heroes are chosen among them).
 */
export function reduceJoinState(before: Map<string, string>, join: RoomEvent, graph: Pick<EventGraph, 'lookup'>): ReducedJoinState {
  const kept = new Set<string>();
  const wantedMembers = new Set<string>([join.state_key ?? join.sender]);
  const via = join.content.join_authorised_via_users_server;
  if (typeof via === 'string') wantedMembers.add(via);
  for (const hero of heroesOf(before, join, graph)) wantedMembers.add(hero);
  for (const [key, id] of before) {
    if (!key.startsWith(MEMBER_PREFIX) || wantedMembers.has(key.slice(MEMBER_PREFIX.length))) kept.add(id);
  }
  const chain = authClosure([...kept, join.event_id], graph.lookup);
  const authChainIds = [...chain].filter((id) => !kept.has(id) && id !== join.event_id);
  return { stateIds: [...kept], authChainIds };
}

/** Whether choosing heroes needs the membership events (a room with a name or canonical alias names itself). */
export function needsHeroes(before: Map<string, string>): boolean {
  return !before.has(stateMapKey('m.room.name', '')) && !before.has(stateMapKey('m.room.canonical_alias', ''));
}

/**
 * The members a client would name the room after, the joiner left out: joined and invited members first, else
 * those who left; earliest (depth, then event ID) first, so every resident picks the same ones.
 */
export function heroesOf(before: Map<string, string>, join: RoomEvent, graph: Pick<EventGraph, 'lookup'>): string[] {
  if (!needsHeroes(before)) return [];
  const present: RoomEvent[] = [];
  const gone: RoomEvent[] = [];
  for (const [key, id] of before) {
    if (!key.startsWith(MEMBER_PREFIX)) continue;
    const member = graph.lookup(id);
    if (!member?.state_key || member.state_key === join.state_key) continue;
    const membership = member.content.membership;
    if (membership === 'join' || membership === 'invite') present.push(member);
    else if (membership === 'leave' || membership === 'ban') gone.push(member);
  }
  const order = (a: RoomEvent, b: RoomEvent) => (a.depth ?? 0) - (b.depth ?? 0) || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0);
  const pool = present.length > 0 ? present.sort(order) : gone.sort(order);
  return pool.slice(0, HERO_COUNT).map((m) => m.state_key!);
}

/**
 * The servers with joined members before the join: the room's joined servers now, less the joiner's own server
 * when only its join put it there (the only membership of that server looked at, so a room of 10,000 members
 * costs one server's events).
 */
export function serversBeforeJoin(joinedNow: readonly string[], before: Map<string, string>, join: RoomEvent, graph: Pick<EventGraph, 'lookup'>): string[] {
  const joinerServer = domainOf(join.state_key ?? join.sender);
  const stillThere = [...before].some(([key, id]) => key.startsWith(MEMBER_PREFIX) && domainOf(key.slice(MEMBER_PREFIX.length)) === joinerServer && graph.lookup(id)?.content.membership === 'join');
  return joinedNow.filter((s) => s !== joinerServer || stillThere);
}

/** The membership event IDs of `before` whose user is on `server` (to load before `serversBeforeJoin`). */
export function membersOfServer(before: Map<string, string>, server: string): string[] {
  const ids: string[] = [];
  for (const [key, id] of before) if (key.startsWith(MEMBER_PREFIX) && domainOf(key.slice(MEMBER_PREFIX.length)) === server) ids.push(id);
  return ids;
}
