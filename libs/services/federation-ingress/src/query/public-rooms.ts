// The public room directory: rooms published here (createRoom's `visibility: public`, or
// `PUT /directory/list/room/{roomId}`) that this server is joined to and whose join rule is public. Read a
// page at a time from the directory index (room ID order, `since` = the last room ID of the page), with
// `limit` capped: a call never loads more than a bounded number of rooms' state.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { parseStateTupleKey } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { RoomAccess } from '../auth/room-access';

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
    private readonly access: RoomAccess,
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
    const state = await this.access.reads.currentState(roomId);
    if (!state) return undefined;
    const content = (type: string) => this.access.reads.contentIn(state, type);
    const joinRule = (await content('m.room.join_rules'))?.join_rule;
    if (joinRule !== 'public') return undefined;
    let joined = 0;
    const memberIds = [...state].filter(([key]) => parseStateTupleKey(key).type === 'm.room.member').map(([, id]) => id);
    for (const member of (await this.store.events.getMany(memberIds)).values()) if ((member.pdu.content as { membership?: unknown }).membership === 'join') joined++;
    const text = async (type: string, field: string) => {
      const value = (await content(type))?.[field];
      return typeof value === 'string' && value !== '' ? value : undefined;
    };
    const chunk: PublicRoomChunk = {
      room_id: roomId,
      num_joined_members: joined,
      world_readable: (await text('m.room.history_visibility', 'history_visibility')) === 'world_readable',
      guest_can_join: (await text('m.room.guest_access', 'guest_access')) === 'can_join',
      join_rule: 'public',
    };
    const optional = { name: await text('m.room.name', 'name'), topic: await text('m.room.topic', 'topic'), canonical_alias: await text('m.room.canonical_alias', 'alias'), avatar_url: await text('m.room.avatar', 'url'), room_type: await text('m.room.create', 'type') };
    for (const [key, value] of Object.entries(optional)) if (value !== undefined) (chunk as unknown as Record<string, unknown>)[key] = value;
    return chunk;
  }
}
