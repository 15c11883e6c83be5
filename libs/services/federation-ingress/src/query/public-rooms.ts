// The public room directory: rooms this server is joined to whose join rule is public.
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

@Injectable()
export class PublicRooms {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly access: RoomAccess,
  ) {}

  async page(limit: number | undefined, since: string | undefined, searchTerm?: string) {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw MatrixError.invalidParam('limit must be a non-negative integer');
    const offset = since === undefined ? 0 : Number(since.replace(/^o/, ''));
    if (!Number.isInteger(offset) || offset < 0) throw MatrixError.invalidParam('since is not a token this server gave');
    let rooms = await this.allPublic();
    if (searchTerm) {
      const term = searchTerm.toLowerCase();
      rooms = rooms.filter((r) => [r.name, r.topic, r.canonical_alias].some((text) => text?.toLowerCase().includes(term)));
    }
    const end = limit === undefined ? rooms.length : Math.min(rooms.length, offset + limit);
    const chunk = rooms.slice(offset, end);
    return {
      chunk,
      total_room_count_estimate: rooms.length,
      ...(end < rooms.length ? { next_batch: `o${end}` } : {}),
      ...(offset > 0 ? { prev_batch: `o${Math.max(0, offset - (limit ?? offset))}` } : {}),
    };
  }

  private async allPublic(): Promise<PublicRoomChunk[]> {
    const chunks: PublicRoomChunk[] = [];
    for (const roomId of (await this.store.rooms.roomsOfServer(this.identity.serverName)).sort()) {
      const state = await this.access.reads.currentState(roomId);
      if (!state) continue;
      const content = (type: string) => this.access.reads.contentIn(state, type);
      const joinRule = (await content('m.room.join_rules'))?.join_rule;
      if (joinRule !== 'public') continue;
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
      chunks.push(chunk);
    }
    return chunks;
  }
}
