// What a local user may still read of a room after leaving it, as the client-server spec says: the
// state as it was when they left (`GET /rooms/{id}/state` and `/state/{type}/{key}`), until they forget
// the room (`POST /rooms/{id}/forget`) or rejoin. A room deleted with `purge` serves nothing any more.
import { Inject, Injectable } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { stateTupleKey, type EventRecord } from '@fedgate/store';
import type { Requester } from '../client-server/requester';
import { assertRoomId } from '../rooms/room-actions';
import { RoomView, type CurrentState } from '../rooms/room-view';

const membershipOf = (record: EventRecord | undefined): string | undefined => {
  const membership = (record?.pdu.content as { membership?: unknown } | undefined)?.membership;
  return typeof membership === 'string' ? membership : undefined;
};

@Injectable()
export class RoomVisibility {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly view: RoomView,
  ) {}

  /**
   * The state the requester may read: the current state while joined (or when the room is
   * world-readable); with `whenLeft`, the state after their leave if they had joined before it and
   * have not forgotten the room since.
   */
  async readableState(requester: Requester, roomId: string, options: { whenLeft: boolean }): Promise<CurrentState> {
    assertRoomId(roomId);
    const notInRoom = () => MatrixError.forbidden(`User ${requester.userId} not in room ${roomId}`);
    if ((await this.store.chatLifecycle.getRoomDeletion(roomId))?.purged) throw MatrixError.forbidden(`Room ${roomId} was deleted on this server`);
    const state = await this.view.currentState(roomId);
    if (!state) throw notInRoom();
    const member = state.events.get(stateTupleKey('m.room.member', requester.userId));
    const visibility = state.events.get(stateTupleKey('m.room.history_visibility', ''))?.pdu.content.history_visibility;
    if (membershipOf(member) === 'join' || visibility === 'world_readable') return state;
    if (!options.whenLeft || !member || !['leave', 'ban'].includes(membershipOf(member) ?? '')) throw notInRoom();
    const forgotten = await this.store.chatLifecycle.getForgotten(requester.userId, roomId);
    if (forgotten?.membershipEventId === member.eventId) throw notInRoom();
    const before = await this.store.state.stateBeforeEvent(member.eventId);
    const previous = before?.get(stateTupleKey('m.room.member', requester.userId));
    if (!previous || membershipOf(await this.store.events.get(previous)) !== 'join') throw notInRoom();
    const after = await this.store.state.stateAfterEvent(member.eventId);
    if (!after) throw notInRoom();
    const records = await this.store.events.getMany([...after.values()]);
    const events = new Map<string, EventRecord>();
    for (const [key, eventId] of after) {
      const record = records.get(eventId);
      if (record) events.set(key, record);
    }
    return { room: state.room, events };
  }

  /** `POST /rooms/{roomId}/forget`: only once the user is out of the room; a later membership ends it. */
  async forget(requester: Requester, roomId: string): Promise<Record<string, never>> {
    assertRoomId(roomId);
    const member = await this.view.stateEvent(roomId, 'm.room.member', requester.userId);
    const membership = membershipOf(member);
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      throw new MatrixError(400, 'M_UNKNOWN', `User ${requester.userId} has not left room ${roomId}`);
    }
    // Never a member: there is nothing to forget.
    if (member) await this.store.chatLifecycle.forget({ userId: requester.userId, roomId, membershipEventId: member.eventId, forgottenTs: Date.now() });
    return {};
  }
}
