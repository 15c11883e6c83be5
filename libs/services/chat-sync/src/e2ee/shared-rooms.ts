// Who shares a room with whom, from this server's view of current room state: device lists matter only
// between users who share a room.
import { domainOf } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { RoomView } from '../rooms/room-view';

/** The rooms this server is in where `userId` is joined. */
export async function joinedRoomsOf(store: Store, userId: string, serverName: string): Promise<string[]> {
  if (domainOf(userId) === serverName) return store.memberships.roomsOf(userId, 'join');
  const view = new RoomView(store);
  const rooms: string[] = [];
  for (const roomId of await store.rooms.roomsOfServer(domainOf(userId))) if ((await view.joinedMembers(roomId)).includes(userId)) rooms.push(roomId);
  return rooms;
}

/** Whether `userId` is joined to a room where some other member satisfies `member`. */
export async function sharesRoomWith(store: Store, userId: string, serverName: string, member: (m: string) => boolean): Promise<boolean> {
  const view = new RoomView(store);
  for (const roomId of await joinedRoomsOf(store, userId, serverName)) {
    if ((await view.joinedMembers(roomId)).some((m) => m !== userId && member(m))) return true;
  }
  return false;
}

/** The checks above on one store, replaceable in tests. */
export class SharedRooms {
  constructor(
    private readonly store: Store,
    private readonly serverName: string,
  ) {}

  sharesRoomWith(userId: string, member: (m: string) => boolean): Promise<boolean> {
    return sharesRoomWith(this.store, userId, this.serverName, member);
  }
}

/** Everyone joined to a room `userId` is joined to (the user included). */
export async function roomFellows(store: Store, userId: string, serverName: string): Promise<Set<string>> {
  const view = new RoomView(store);
  const fellows = new Set<string>([userId]);
  for (const roomId of await joinedRoomsOf(store, userId, serverName)) for (const m of await view.joinedMembers(roomId)) fellows.add(m);
  return fellows;
}
