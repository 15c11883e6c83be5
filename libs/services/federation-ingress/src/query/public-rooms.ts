// The public room directory: rooms published here (createRoom's `visibility: public`, or
// `PUT /directory/list/room/{roomId}`) that this server is joined to and whose join rule is public. Read a
// page at a time from the directory index (room ID order, `since` = the last room ID of the page), with
// `limit` capped: a call never loads more than a bounded number of rooms' state.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { publicRoomChunk, roomSummary, type PublicRoomChunk } from '@fedgate/room-state';
import { loadSummaryState } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';

/** The most rooms one page holds, whatever `limit` asks. */
export const MAX_PUBLIC_ROOMS_LIMIT = 100;
/** Published rooms looked at per call at most (a search term may skip many). */
const MAX_SCANNED = 500;
const BATCH = 50;

const sinceToken = (roomId: string) => `r${Buffer.from(roomId, 'utf8').toString('base64url')}`;

function roomIdOfSince(since: string): string {
  const roomId = since.startsWith('r') ? Buffer.from(since.slice(1), 'base64url').toString('utf8') : '';
  if (!roomId.startsWith('!')) throw MatrixError.invalidParam('since is not a token this server gave');
  return roomId;
}

/** What a `publicRooms` request asks, from either API (federation or client-server), checked. */
export interface PublicRoomsRequest {
  limit?: number;
  since?: string;
  searchTerm?: string;
  roomTypes?: (string | null)[];
  includeAllNetworks: boolean;
  thirdPartyInstanceId?: string;
}

/** The body of `POST publicRooms` (both APIs): bad types are 400 M_BAD_JSON; a network with all networks, M_INVALID_PARAM. */
export function parsePublicRoomsBody(body: unknown): PublicRoomsRequest {
  if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw MatrixError.badJson('Body must be a JSON object');
  const b = (body ?? {}) as { limit?: unknown; since?: unknown; filter?: unknown; include_all_networks?: unknown; third_party_instance_id?: unknown };
  if (b.limit !== undefined && typeof b.limit !== 'number') throw MatrixError.badJson('limit must be an integer');
  if (b.since !== undefined && typeof b.since !== 'string') throw MatrixError.badJson('since must be a string');
  if (b.filter !== undefined && b.filter !== null && (typeof b.filter !== 'object' || Array.isArray(b.filter))) throw MatrixError.badJson('filter must be an object');
  const filter = (b.filter ?? {}) as { generic_search_term?: unknown; room_types?: unknown };
  if (filter.generic_search_term !== undefined && filter.generic_search_term !== null && typeof filter.generic_search_term !== 'string') throw MatrixError.badJson('filter.generic_search_term must be a string');
  const roomTypes = filter.room_types;
  if (roomTypes !== undefined && (!Array.isArray(roomTypes) || roomTypes.some((t) => t !== null && typeof t !== 'string'))) throw MatrixError.badJson('filter.room_types must be an array of strings or null');
  if (b.include_all_networks !== undefined && typeof b.include_all_networks !== 'boolean') throw MatrixError.badJson('include_all_networks must be a boolean');
  if (b.third_party_instance_id !== undefined && typeof b.third_party_instance_id !== 'string') throw MatrixError.badJson('third_party_instance_id must be a string');
  return checkedNetworks({
    ...(b.limit !== undefined ? { limit: b.limit } : {}),
    ...(b.since !== undefined ? { since: b.since } : {}),
    ...(typeof filter.generic_search_term === 'string' ? { searchTerm: filter.generic_search_term } : {}),
    ...(roomTypes !== undefined ? { roomTypes: roomTypes as (string | null)[] } : {}),
    includeAllNetworks: b.include_all_networks === true,
    ...(b.third_party_instance_id !== undefined ? { thirdPartyInstanceId: b.third_party_instance_id } : {}),
  });
}

/** The query of `GET publicRooms` (both APIs). */
export function parsePublicRoomsQuery(query: Record<string, unknown>): PublicRoomsRequest {
  const text = (name: string) => {
    const value = query[name];
    if (value !== undefined && typeof value !== 'string') throw MatrixError.invalidParam(`${name} must be given once`);
    return value;
  };
  const limit = text('limit');
  const since = text('since');
  const all = text('include_all_networks');
  if (all !== undefined && all !== 'true' && all !== 'false') throw MatrixError.invalidParam('include_all_networks must be true or false');
  const network = text('third_party_instance_id');
  return checkedNetworks({
    ...(limit !== undefined ? { limit: Number(limit) } : {}),
    ...(since !== undefined ? { since } : {}),
    includeAllNetworks: all === 'true',
    ...(network !== undefined ? { thirdPartyInstanceId: network } : {}),
  });
}

function checkedNetworks(request: PublicRoomsRequest): PublicRoomsRequest {
  if (request.includeAllNetworks && request.thirdPartyInstanceId !== undefined) throw MatrixError.invalidParam('third_party_instance_id cannot be used with include_all_networks');
  return request;
}

@Injectable()
export class PublicRooms {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  /**
   * The page a request asks for. Rooms here are all of this server's own directory: no application service
   * publishes rooms for a third-party network, so `include_all_networks` lists the same rooms and a
   * `third_party_instance_id` names a network with none.
   */
  async answer(request: PublicRoomsRequest) {
    if (request.thirdPartyInstanceId !== undefined) {
      if (request.limit !== undefined && (!Number.isInteger(request.limit) || request.limit < 0)) throw MatrixError.invalidParam('limit must be a non-negative integer');
      if (request.since !== undefined) roomIdOfSince(request.since);
      return { chunk: [], total_room_count_estimate: 0 };
    }
    return this.page(request.limit, request.since, request.searchTerm, request.roomTypes);
  }

  /**
   * One page. `roomTypes` (POST's `filter.room_types`): only rooms of these types, `null` standing for rooms
   * without one. `since` is only a position in the published list: a token naming any other room, forged or
   * stale, still reads only published rooms after it.
   */
  async page(limit: number | undefined, since: string | undefined, searchTerm?: string, roomTypes?: readonly (string | null)[]) {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw MatrixError.invalidParam('limit must be a non-negative integer');
    const pageSize = Math.min(limit ?? MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
    let cursor = since === undefined ? undefined : roomIdOfSince(since);
    const term = searchTerm?.toLowerCase();
    const chunk: PublicRoomChunk[] = [];
    let scanned = 0;
    let exhausted = false;
    while (chunk.length < pageSize && scanned < MAX_SCANNED) {
      const ids = await this.store.roomDirectory.listPublic({ after: cursor, limit: Math.min(BATCH, MAX_SCANNED - scanned) });
      if (ids.length === 0) {
        exhausted = true;
        break;
      }
      for (const roomId of ids) {
        cursor = roomId;
        scanned++;
        const room = await this.chunkOf(roomId);
        const typeMatches = (room: PublicRoomChunk) => roomTypes === undefined || roomTypes.includes(room.room_type ?? null);
        if (room && typeMatches(room) && (!term || [room.name, room.topic, room.canonical_alias].some((text) => text?.toLowerCase().includes(term)))) chunk.push(room);
        if (chunk.length >= pageSize) break;
      }
    }
    const more = !exhausted && cursor !== undefined && (await this.store.roomDirectory.listPublic({ after: cursor, limit: 1 })).length > 0;
    return {
      chunk,
      total_room_count_estimate: await this.store.roomDirectory.countPublic(),
      ...(more && cursor !== undefined ? { next_batch: sinceToken(cursor) } : {}),
    };
  }

  /** The directory entry of a published room, or undefined when this server is not in it or it is not joinable. */
  private async chunkOf(roomId: string): Promise<PublicRoomChunk | undefined> {
    if (!(await this.store.rooms.getJoinedServers(roomId)).includes(this.identity.serverName)) return undefined;
    const source = await loadSummaryState(this.store, roomId);
    if (!source) return undefined;
    const summary = roomSummary(roomId, source.roomVersion, source.state);
    return summary.join_rule === 'public' ? publicRoomChunk(summary) : undefined;
  }
}
