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

@Injectable()
export class PublicRooms {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

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
