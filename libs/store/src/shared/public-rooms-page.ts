// The public room directory: rooms published here (createRoom's `visibility: public`, or
// `PUT /directory/list/room/{roomId}`) that this server is joined to and whose join rule is public. Read a
// page at a time from the directory index (room ID order, the cursor = the last room ID of the page), with
// `limit` capped: a call never loads more than a bounded number of rooms' state. Federation and client-server
// `publicRooms` both serve it.
import { publicRoomChunk, roomSummary, type PublicRoomChunk } from '@fedgate/room-state';
import type { Store } from '../ports/store';
import { loadSummaryState } from './room-summary-state';

/** The most rooms one page holds, whatever `limit` asks. */
export const MAX_PUBLIC_ROOMS_LIMIT = 100;
/** Published rooms looked at per call at most (a search term may skip many). */
const MAX_SCANNED = 500;
const BATCH = 50;

export interface PublicRoomsPageQuery {
  limit?: number;
  /** Only a position in the published list: a cursor naming any other room still reads only published rooms after it. */
  afterRoomId?: string;
  searchTerm?: string;
  /** Only rooms of these types, `null` standing for rooms without one. */
  roomTypes?: readonly (string | null)[];
  /** A third-party network: no application service publishes rooms for one here, so it has none. */
  thirdPartyInstanceId?: string;
}

export interface PublicRoomsPage {
  chunk: PublicRoomChunk[];
  total_room_count_estimate: number;
  /** Set when more rooms follow: where the next page starts after. */
  lastRoomId?: string;
}

export async function publicRoomsPage(store: Store, serverName: string, query: PublicRoomsPageQuery): Promise<PublicRoomsPage> {
  if (query.thirdPartyInstanceId !== undefined) return { chunk: [], total_room_count_estimate: 0 };
  const pageSize = Math.min(query.limit ?? MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
  const { roomTypes } = query;
  let cursor = query.afterRoomId;
  const term = query.searchTerm?.toLowerCase();
  const chunk: PublicRoomChunk[] = [];
  let scanned = 0;
  let exhausted = false;
  while (chunk.length < pageSize && scanned < MAX_SCANNED) {
    const ids = await store.roomDirectory.listPublic({ after: cursor, limit: Math.min(BATCH, MAX_SCANNED - scanned) });
    if (ids.length === 0) {
      exhausted = true;
      break;
    }
    for (const roomId of ids) {
      cursor = roomId;
      scanned++;
      const room = await chunkOf(store, serverName, roomId);
      const typeMatches = (room: PublicRoomChunk) => roomTypes === undefined || roomTypes.includes(room.room_type ?? null);
      if (room && typeMatches(room) && (!term || [room.name, room.topic, room.canonical_alias].some((text) => text?.toLowerCase().includes(term)))) chunk.push(room);
      if (chunk.length >= pageSize) break;
    }
  }
  const more = !exhausted && cursor !== undefined && (await store.roomDirectory.listPublic({ after: cursor, limit: 1 })).length > 0;
  return { chunk, total_room_count_estimate: await store.roomDirectory.countPublic(), ...(more && cursor !== undefined ? { lastRoomId: cursor } : {}) };
}

/** The directory entry of a published room, or undefined when this server is not in it or it is not joinable. */
async function chunkOf(store: Store, serverName: string, roomId: string): Promise<PublicRoomChunk | undefined> {
  if (!(await store.rooms.getJoinedServers(roomId)).includes(serverName)) return undefined;
  const source = await loadSummaryState(store, roomId);
  if (!source) return undefined;
  const summary = roomSummary(roomId, source.roomVersion, source.state);
  return summary.join_rule === 'public' ? publicRoomChunk(summary) : undefined;
}
