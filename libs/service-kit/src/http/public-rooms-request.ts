// The `publicRooms` request of both APIs (federation and client-server): the POST body or the GET query, checked,
// and the local directory's `since` token (a position in the published list: `r` + the last room ID, base64url).
import { MatrixError } from './matrix-error';

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

/** What the local directory is asked, from a checked request: `since` decoded, `limit` a non-negative integer. */
export interface LocalPublicRoomsQuery {
  limit?: number;
  afterRoomId?: string;
  searchTerm?: string;
  roomTypes?: (string | null)[];
  thirdPartyInstanceId?: string;
}

export function localPublicRoomsQuery(request: PublicRoomsRequest): LocalPublicRoomsQuery {
  if (request.limit !== undefined && (!Number.isInteger(request.limit) || request.limit < 0)) throw MatrixError.invalidParam('limit must be a non-negative integer');
  return {
    ...(request.limit !== undefined ? { limit: request.limit } : {}),
    ...(request.since !== undefined ? { afterRoomId: roomIdOfSince(request.since) } : {}),
    ...(request.searchTerm !== undefined ? { searchTerm: request.searchTerm } : {}),
    ...(request.roomTypes !== undefined ? { roomTypes: request.roomTypes } : {}),
    ...(request.thirdPartyInstanceId !== undefined ? { thirdPartyInstanceId: request.thirdPartyInstanceId } : {}),
  };
}

/** The answer of a local page: `lastRoomId` (when more rooms follow) becomes `next_batch`. */
export function localPublicRoomsAnswer<T>(page: { chunk: T[]; total_room_count_estimate: number; lastRoomId?: string }) {
  const { lastRoomId, ...rest } = page;
  return { ...rest, ...(lastRoomId !== undefined ? { next_batch: `r${Buffer.from(lastRoomId, 'utf8').toString('base64url')}` } : {}) };
}

function roomIdOfSince(since: string): string {
  const roomId = since.startsWith('r') ? Buffer.from(since.slice(1), 'base64url').toString('utf8') : '';
  if (!roomId.startsWith('!')) throw MatrixError.invalidParam('since is not a token this server gave');
  return roomId;
}
