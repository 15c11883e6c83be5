// `GET /_matrix/client/v1/rooms/{roomId}/hierarchy` for an application service's user: the space tree depth
// first, a page of rooms at a time. Rooms this server is in are read from its state; others are asked of the
// servers their links name (RemoteHierarchies). Each room is served only when the user may see it (the
// spec's list: member, invited, may join or knock, world-readable). Bounded: depth, rooms per page, rooms per
// walk, remote requests and time per page. The `from` token carries the rest of the walk, signed with this
// server's key so a client cannot hand back one it made up.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { signJson, verifyJsonSignature } from '@fedgate/protocol';
import { hierarchyRoom, summaryAllowsUser, userMayPeekOrJoin, type HierarchyRoom } from '@fedgate/room-state';
import { loadSummaryState } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { RemoteHierarchies } from './remote-hierarchy';

export const HIERARCHY_LIMITS = {
  defaultLimit: 50,
  maxLimit: 100,
  defaultMaxDepth: 10,
  maxMaxDepth: 10,
  /** Rooms one walk (all its pages) visits at most. */
  maxRoomsPerWalk: 1_000,
  /** Remote servers asked per page at most, and the time a page may take. */
  maxRemoteRequestsPerPage: 10,
  pageBudgetMs: 20_000,
};

export interface HierarchyQuery {
  suggestedOnly: boolean;
  maxDepth: number;
  limit: number;
  from?: string;
  /** Servers to ask about the root when this server is not in it. */
  via: string[];
}

interface WalkEntry {
  roomId: string;
  via: string[];
  depth: number;
  /** The server that described the parent, when it was a remote answer. */
  from?: string;
}

interface WalkState {
  root: string;
  user: string;
  suggestedOnly: boolean;
  maxDepth: number;
  /** Still to visit; the next one is last. */
  stack: WalkEntry[];
  visited: string[];
}

@Injectable()
export class SpaceHierarchy {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly remote: RemoteHierarchies,
  ) {}

  async page(userId: string, rootId: string, query: HierarchyQuery): Promise<{ rooms: HierarchyRoom[]; next_batch?: string }> {
    const walk = query.from === undefined ? this.firstPage(userId, rootId, query) : this.resumed(query.from, userId, rootId, query);
    const joinedRooms = new Set(await this.store.memberships.roomsOf(userId, 'join'));
    const invitedRooms = new Set(await this.store.memberships.roomsOf(userId, 'invite'));
    const deadline = Date.now() + HIERARCHY_LIMITS.pageBudgetMs;
    const visited = new Set(walk.visited);
    const rooms: HierarchyRoom[] = [];
    const budget = { remoteRequests: HIERARCHY_LIMITS.maxRemoteRequestsPerPage, deadline };
    if (query.from !== undefined) {
      // The root is checked again on every page: the user may have lost access since.
      const root = await this.roomFor({ roomId: rootId, via: this.rootVia(rootId, query), depth: 0 }, userId, walk.suggestedOnly, { joinedRooms, invitedRooms }, budget);
      if (root.kind !== 'served') throw refusalOf(root, rootId);
    }
    while (walk.stack.length > 0 && rooms.length < query.limit && visited.size < HIERARCHY_LIMITS.maxRoomsPerWalk) {
      const entry = walk.stack.pop()!;
      if (visited.has(entry.roomId)) continue;
      const isRoot = entry.roomId === walk.root && entry.depth === 0;
      if (!isRoot && (budget.remoteRequests <= 0 || Date.now() >= deadline)) {
        // Out of budget for this page: the entry waits for the next one.
        walk.stack.push(entry);
        break;
      }
      visited.add(entry.roomId);
      const room = await this.roomFor(entry, userId, walk.suggestedOnly, { joinedRooms, invitedRooms }, budget);
      if (room.kind === 'unreachable' && room.status === 504 && !isRoot) {
        // The page ran out of time on this room: the next page asks again.
        visited.delete(entry.roomId);
        walk.stack.push(entry);
        break;
      }
      if (room.kind !== 'served') {
        if (isRoot) throw refusalOf(room, entry.roomId);
        continue;
      }
      rooms.push(room.room);
      if (entry.depth < walk.maxDepth) {
        for (const link of [...room.room.children_state].reverse()) {
          if (visited.has(link.state_key)) continue;
          walk.stack.push({ roomId: link.state_key, via: link.content.via as string[], depth: entry.depth + 1, ...(room.answeredBy ? { from: room.answeredBy } : {}) });
        }
      }
    }
    walk.visited = [...visited];
    const more = walk.stack.some((e) => !visited.has(e.roomId)) && visited.size < HIERARCHY_LIMITS.maxRoomsPerWalk;
    return more ? { rooms, next_batch: this.token(walk) } : { rooms };
  }

  private async roomFor(
    entry: WalkEntry,
    userId: string,
    suggestedOnly: boolean,
    memberships: { joinedRooms: Set<string>; invitedRooms: Set<string> },
    budget: { remoteRequests: number; deadline: number },
  ): Promise<RoomOutcome> {
    const userJoinedTo = (id: string) => memberships.joinedRooms.has(id);
    // Local data wins over what another server says.
    if ((await this.store.rooms.getJoinedServers(entry.roomId)).includes(this.identity.serverName)) {
      const local = await loadSummaryState(this.store, entry.roomId);
      if (local) {
        if (!userMayPeekOrJoin({ userId, state: local.state, userJoinedTo })) return { kind: 'hidden' };
        return { kind: 'served', room: hierarchyRoom(entry.roomId, local.roomVersion, local.state, { suggestedOnly }) };
      }
    }
    if (this.remote.knownInaccessible(entry.roomId, suggestedOnly, entry.from)) return { kind: 'hidden' };
    let room = this.remote.cachedChild(entry.roomId, suggestedOnly, entry.from);
    let answeredBy = entry.from;
    // A child summary given with its parent has no children of its own: a space is asked about directly.
    if (!room || room.room_type === 'm.space') {
      budget.remoteRequests--;
      const fetched = await this.remote.fetch(entry.roomId, entry.via, suggestedOnly, budget.deadline);
      if (!fetched.ok) return fetched.status === 403 ? { kind: 'hidden' } : { kind: 'unreachable', status: fetched.status, reason: fetched.reason };
      room = fetched.answer.room;
      answeredBy = fetched.server;
    }
    const member = memberships.joinedRooms.has(entry.roomId) || memberships.invitedRooms.has(entry.roomId);
    if (!member && !summaryAllowsUser(room, userJoinedTo)) return { kind: 'hidden' };
    return { kind: 'served', room, answeredBy };
  }

  private firstPage(userId: string, rootId: string, query: HierarchyQuery): WalkState {
    return { root: rootId, user: userId, suggestedOnly: query.suggestedOnly, maxDepth: query.maxDepth, stack: [{ roomId: rootId, via: this.rootVia(rootId, query), depth: 0 }], visited: [] };
  }

  private rootVia(rootId: string, query: HierarchyQuery): string[] {
    return [...new Set([...query.via, ...serverOfRoomId(rootId)])];
  }

  private token(walk: WalkState): string {
    const signed = signJson({ walk: walk as unknown as Record<string, unknown> }, this.identity.serverName, this.identity.signingKey);
    return Buffer.from(JSON.stringify(signed), 'utf8').toString('base64url');
  }

  /** The walk a `from` token carries, for the same user, room and filters; anything else is refused. */
  private resumed(from: string, userId: string, rootId: string, query: HierarchyQuery): WalkState {
    let walk: WalkState;
    try {
      const signed = JSON.parse(Buffer.from(from, 'base64url').toString('utf8')) as Record<string, unknown>;
      const keys = new Map(this.identity.allKeys.map((key) => [key.keyId, key.verifyKey()]));
      verifyJsonSignature(signed, this.identity.serverName, (server, keyId) => (server === this.identity.serverName ? keys.get(keyId) : undefined));
      walk = signed.walk as WalkState;
    } catch {
      throw MatrixError.invalidParam('from is not a token this server gave');
    }
    if (walk.root !== rootId || walk.user !== userId) throw MatrixError.invalidParam('from is a token for another room or user');
    if (walk.suggestedOnly !== query.suggestedOnly || walk.maxDepth !== query.maxDepth) throw MatrixError.invalidParam('suggested_only and max_depth cannot change on paginated requests');
    return walk;
  }
}

type RoomOutcome = { kind: 'served'; room: HierarchyRoom; answeredBy?: string } | { kind: 'hidden' } | { kind: 'unreachable'; status: number; reason: string };

function refusalOf(outcome: Exclude<RoomOutcome, { kind: 'served' }>, roomId: string): MatrixError {
  return outcome.kind === 'unreachable' ? new MatrixError(outcome.status, 'M_UNKNOWN', outcome.reason) : MatrixError.forbidden(`You may not view room ${roomId}`);
}

function serverOfRoomId(roomId: string): string[] {
  const colon = roomId.indexOf(':');
  return colon < 0 ? [] : [roomId.slice(colon + 1)];
}
