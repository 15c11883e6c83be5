// The room directory on the client-server side: `GET/PUT /directory/list/room/{roomId}` and the
// `visibility` given at createRoom. Only published rooms are listed by `publicRooms` (ingress).
// Who may publish or unpublish: a joined member allowed to set the room's canonical alias (the power
// a homeserver asks for it), so one application service cannot list or hide another's rooms.
import { Inject, Injectable } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { isSupportedRoomVersion } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { stateTupleKey, type DirectoryVisibility } from '@fedgate/store';
import type { Requester } from '../client-server/requester';
import { assertRoomId } from '../rooms/room-actions';
import { hasStatePower } from '../rooms/state-power';
import { RoomView } from '../rooms/room-view';

@Injectable()
export class RoomDirectory {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly view: RoomView,
  ) {}

  /** A room this server knows: its visibility (private unless published). */
  async visibility(roomId: string): Promise<{ visibility: DirectoryVisibility }> {
    assertRoomId(roomId);
    if (!(await this.store.rooms.get(roomId))) throw MatrixError.notFound(`Unknown room ${roomId}`);
    return { visibility: (await this.store.roomDirectory.get(roomId))?.visibility ?? 'private' };
  }

  async setVisibility(requester: Requester, roomId: string, body: unknown): Promise<Record<string, never>> {
    assertRoomId(roomId);
    const visibility = (body as { visibility?: unknown } | null | undefined)?.visibility ?? 'public';
    if (visibility !== 'public' && visibility !== 'private') throw MatrixError.badJson('visibility must be public or private');
    const state = await this.view.currentState(roomId);
    const member = state?.events.get(stateTupleKey('m.room.member', requester.userId));
    // Not in the room and unknown room answer alike: the call tells nothing about rooms one is not in.
    if (!state || (member?.pdu.content as { membership?: unknown } | undefined)?.membership !== 'join') throw MatrixError.forbidden(`${requester.userId} is not in room ${roomId}`);
    if (!isSupportedRoomVersion(state.room.roomVersion)) throw MatrixError.forbidden(`Room ${roomId} has an unsupported version`);
    if (!hasStatePower(state, requester.userId, 'm.room.canonical_alias')) {
      throw MatrixError.forbidden(`${requester.userId} may not change the directory listing of ${roomId}`);
    }
    await this.publish(requester, roomId, visibility);
    return {};
  }

  /** Records the visibility (createRoom, once the room exists). */
  async publish(requester: Requester, roomId: string, visibility: DirectoryVisibility): Promise<void> {
    await this.store.roomDirectory.set({ roomId, visibility, appServiceId: requester.service.id, updatedTs: Date.now() });
  }
}
