// Spaces: a room's summary as the hierarchy APIs serve it, its valid `m.space.child` links in the spec's
// order, and who may see a room there (a remote server over federation, a user over the client-server API).
// Pure: callers hand in the room's current state events.

/** A current state event as the summary reads it. */
export interface SummaryStateEvent {
  readonly type: string;
  readonly state_key: string;
  readonly sender: string;
  readonly origin_server_ts: number;
  readonly content: Record<string, unknown>;
}

/** Current state as (type, state_key) → event; `stateOf(events)` builds it. */
export type SummaryState = ReadonlyMap<string, SummaryStateEvent>;

export const SPACE_ROOM_TYPE = 'm.space';
/** `m.space.child` links read per space at most: a space with more is served with its first ones in order. */
export const MAX_CHILDREN_PER_SPACE = 100;
const MAX_ORDER_LENGTH = 50;

const key = (type: string, stateKey: string) => `${type}\u0000${stateKey}`;

export function stateOf(events: Iterable<SummaryStateEvent>): SummaryState {
  const map = new Map<string, SummaryStateEvent>();
  for (const event of events) map.set(key(event.type, event.state_key), event);
  return map;
}

const contentOf = (state: SummaryState, type: string, stateKey = ''): Record<string, unknown> | undefined => state.get(key(type, stateKey))?.content;

function text(state: SummaryState, type: string, field: string): string | undefined {
  const value = contentOf(state, type)?.[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export interface ChildLink {
  readonly type: 'm.space.child';
  readonly state_key: string;
  readonly content: Record<string, unknown>;
  readonly sender: string;
  readonly origin_server_ts: number;
}

/** A room as the public room directory lists it (the spec's `PublicRoomsChunk`). */
export interface PublicRoomChunk {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  join_rule: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  room_type?: string;
}

export interface RoomSummary extends PublicRoomChunk {
  allowed_room_ids?: string[];
  encryption?: string;
  room_version?: string;
}

export type HierarchyRoom = RoomSummary & { children_state: ChildLink[] };

/** A child link is valid when `via` is a non-empty list of strings (a link with its content cleared is removed). */
export function hasValidVia(content: Record<string, unknown>): boolean {
  const via = content.via;
  return Array.isArray(via) && via.length > 0 && via.every((server) => typeof server === 'string' && server.length > 0);
}

function validOrder(content: Record<string, unknown>): string | undefined {
  const order = content.order;
  if (typeof order !== 'string' || order.length > MAX_ORDER_LENGTH) return undefined;
  for (let i = 0; i < order.length; i++) {
    const code = order.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return undefined;
  }
  return order;
}

const codePointCompare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The room's valid `m.space.child` links (room IDs as state keys), ordered as the spec says: a valid `order`
 * first (by code points), then by `origin_server_ts`, then by room ID; only suggested ones with `suggestedOnly`.
 */
export function childLinks(state: SummaryState, options: { suggestedOnly?: boolean } = {}): ChildLink[] {
  return orderedLinks(state)
    .filter((link) => !options.suggestedOnly || link.content.suggested === true)
    .slice(0, MAX_CHILDREN_PER_SPACE);
}

function orderedLinks(state: SummaryState): ChildLink[] {
  const links: ChildLink[] = [];
  for (const event of state.values()) {
    if (event.type !== 'm.space.child' || !event.state_key.startsWith('!') || !hasValidVia(event.content)) continue;
    links.push({ type: 'm.space.child', state_key: event.state_key, content: event.content, sender: event.sender, origin_server_ts: event.origin_server_ts });
  }
  links.sort((a, b) => {
    const orderA = validOrder(a.content);
    const orderB = validOrder(b.content);
    if (orderA !== undefined && orderB === undefined) return -1;
    if (orderA === undefined && orderB !== undefined) return 1;
    if (orderA !== undefined && orderB !== undefined && orderA !== orderB) return codePointCompare(orderA, orderB);
    if (a.origin_server_ts !== b.origin_server_ts) return a.origin_server_ts - b.origin_server_ts;
    return codePointCompare(a.state_key, b.state_key);
  });
  return links;
}

export function joinRuleOf(state: SummaryState): string {
  const rule = contentOf(state, 'm.room.join_rules')?.join_rule;
  return typeof rule === 'string' ? rule : 'invite';
}

/** Rooms named by a restricted join rule's `m.room_membership` allow conditions. */
export function allowedRoomIds(state: SummaryState): string[] {
  const allow = contentOf(state, 'm.room.join_rules')?.allow;
  if (!Array.isArray(allow)) return [];
  const ids: string[] = [];
  for (const condition of allow) {
    const c = condition as { type?: unknown; room_id?: unknown } | null;
    if (c && c.type === 'm.room_membership' && typeof c.room_id === 'string' && !ids.includes(c.room_id)) ids.push(c.room_id);
  }
  return ids;
}

const isRestricted = (joinRule: string) => joinRule === 'restricted' || joinRule === 'knock_restricted';

export function membershipIn(state: SummaryState, userId: string): string | undefined {
  const membership = contentOf(state, 'm.room.member', userId)?.membership;
  return typeof membership === 'string' ? membership : undefined;
}

export function roomSummary(roomId: string, roomVersion: string | undefined, state: SummaryState): RoomSummary {
  let joined = 0;
  for (const event of state.values()) if (event.type === 'm.room.member' && event.content.membership === 'join') joined++;
  const joinRule = joinRuleOf(state);
  const summary: RoomSummary = {
    room_id: roomId,
    num_joined_members: joined,
    world_readable: text(state, 'm.room.history_visibility', 'history_visibility') === 'world_readable',
    guest_can_join: text(state, 'm.room.guest_access', 'guest_access') === 'can_join',
    join_rule: joinRule,
  };
  const optional: Partial<RoomSummary> = {
    name: text(state, 'm.room.name', 'name'),
    topic: text(state, 'm.room.topic', 'topic'),
    canonical_alias: text(state, 'm.room.canonical_alias', 'alias'),
    avatar_url: text(state, 'm.room.avatar', 'url'),
    room_type: text(state, 'm.room.create', 'type'),
    encryption: text(state, 'm.room.encryption', 'algorithm'),
    room_version: roomVersion,
  };
  if (isRestricted(joinRule)) optional.allowed_room_ids = allowedRoomIds(state);
  for (const [field, value] of Object.entries(optional)) if (value !== undefined) (summary as unknown as Record<string, unknown>)[field] = value;
  return summary;
}

const PUBLIC_CHUNK_FIELDS = ['room_id', 'num_joined_members', 'world_readable', 'guest_can_join', 'join_rule', 'name', 'topic', 'canonical_alias', 'avatar_url', 'room_type'] as const;

/** The directory's fields of a summary (a chunk carries no allow list, encryption or version). */
export function publicRoomChunk(summary: RoomSummary): PublicRoomChunk {
  const chunk: Record<string, unknown> = {};
  for (const field of PUBLIC_CHUNK_FIELDS) if (summary[field] !== undefined) chunk[field] = summary[field];
  return chunk as unknown as PublicRoomChunk;
}

/** The summary with the room's child links when it is a space (an empty list otherwise). */
export function hierarchyRoom(roomId: string, roomVersion: string | undefined, state: SummaryState, options: { suggestedOnly?: boolean } = {}): HierarchyRoom {
  const summary = roomSummary(roomId, roomVersion, state);
  return { ...summary, children_state: summary.room_type === SPACE_ROOM_TYPE ? childLinks(state, options) : [] };
}

/** Join rules that let anyone try to join or knock (knocking only in versions that have it: the auth rules refuse it elsewhere). */
const OPEN_JOIN_RULES = new Set(['public', 'knock', 'knock_restricted']);

/**
 * What the federation hierarchy needs of a room, small enough to cache per state snapshot: its summary, its
 * valid child links in order, and the servers with a member joined or invited (the full state of a large room
 * is not kept).
 */
export interface RoomFacts {
  readonly summary: RoomSummary;
  /** Valid `m.space.child` links in the spec's order (a space's only; at most MAX_LINKS_KEPT). */
  readonly links: readonly ChildLink[];
  readonly serversWithMembers: ReadonlySet<string>;
}

const MAX_LINKS_KEPT = 1_000;

export function roomFacts(roomId: string, roomVersion: string | undefined, state: SummaryState): RoomFacts {
  const summary = roomSummary(roomId, roomVersion, state);
  const servers = new Set<string>();
  for (const event of state.values()) {
    if (event.type !== 'm.room.member' || (event.content.membership !== 'join' && event.content.membership !== 'invite')) continue;
    servers.add(event.state_key.slice(event.state_key.indexOf(':') + 1));
  }
  const links = summary.room_type === SPACE_ROOM_TYPE ? orderedLinks(state).slice(0, MAX_LINKS_KEPT) : [];
  return { summary, links, serversWithMembers: servers };
}

/** The room as the hierarchy serves it, from its facts. */
export function hierarchyRoomOf(facts: RoomFacts, options: { suggestedOnly?: boolean } = {}): HierarchyRoom {
  const links = options.suggestedOnly ? facts.links.filter((l) => l.content.suggested === true) : facts.links;
  return { ...facts.summary, children_state: links.slice(0, MAX_CHILDREN_PER_SPACE) };
}

/**
 * What the federation hierarchy may tell a remote server: a room it could peek or join (open join rule,
 * world-readable, a member of its joined or invited, or a restricted room's allowed room it is joined to).
 */
export function factsAllowServer(facts: RoomFacts, serverName: string, serverJoinedTo: (roomId: string) => boolean): boolean {
  return facts.serversWithMembers.has(serverName) || summaryAllowsUser(facts.summary, serverJoinedTo);
}

/** The client-server hierarchy's rule for a user: a member, invited, able to join or knock, or a world-readable room. */
export interface UserAccessFacts {
  readonly userId: string;
  readonly state: SummaryState;
  /** Whether the user is joined to `roomId` (for restricted rooms' allow rules). */
  readonly userJoinedTo: (roomId: string) => boolean;
}

export function userMayPeekOrJoin({ userId, state, userJoinedTo }: UserAccessFacts): boolean {
  const membership = membershipIn(state, userId);
  if (membership === 'join' || membership === 'invite') return true;
  if (membership === 'ban') return false;
  return summaryAllowsUser(roomSummary('', undefined, state), userJoinedTo);
}

/** The same rule over a summary another server gave (no state here): by its join rule, visibility and allow list. */
export function summaryAllowsUser(summary: Pick<RoomSummary, 'join_rule' | 'world_readable' | 'allowed_room_ids'>, userJoinedTo: (roomId: string) => boolean): boolean {
  if (OPEN_JOIN_RULES.has(summary.join_rule) || summary.world_readable) return true;
  return isRestricted(summary.join_rule) && (summary.allowed_room_ids ?? []).some(userJoinedTo);
}
