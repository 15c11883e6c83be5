// Following a room upgrade made elsewhere: the tombstone in a room a user is in names the new room and, by its
// sender, a server that is in it.
import type { Store } from '@fedgate/store';
import type { RoomView } from './room-view';

/** Rooms of a user looked at for tombstones at most, when they join a room this server is not in. */
const MAX_ROOMS_FOR_TOMBSTONES = 500;

/**
 * The servers of the tombstones that point to `roomId` in rooms the user is in: a room upgraded by another
 * server is joined through the server that sent its tombstone (a v12 room ID names no server to try).
 */
export async function tombstoneServers(store: Store, view: RoomView, userId: string, roomId: string): Promise<string[]> {
  const servers: string[] = [];
  for (const oldRoomId of (await store.memberships.roomsOf(userId, 'join')).slice(0, MAX_ROOMS_FOR_TOMBSTONES)) {
    const tombstone = await view.stateEvent(oldRoomId, 'm.room.tombstone', '');
    if ((tombstone?.pdu.content as { replacement_room?: unknown } | undefined)?.replacement_room !== roomId) continue;
    const sender = tombstone!.pdu.sender;
    servers.push(sender.slice(sender.indexOf(':') + 1));
  }
  return [...new Set(servers)];
}
