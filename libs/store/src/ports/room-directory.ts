// The room directory: whether each room is published (`visibility` of createRoom, and
// `PUT /directory/list/room/{roomId}`), kept as an index so the public room list is read a page at a time.

export type DirectoryVisibility = 'public' | 'private';

export interface RoomDirectoryEntry {
  roomId: string;
  visibility: DirectoryVisibility;
  /** The application service whose user set it last. */
  appServiceId: string | null;
  updatedTs: number;
}

export interface RoomDirectoryRepository {
  /** Sets (replaces) a room's entry. */
  set(entry: RoomDirectoryEntry): Promise<void>;
  get(roomId: string): Promise<RoomDirectoryEntry | undefined>;
  /** Published room IDs in room ID order, those after `after` only, at most `limit`. */
  listPublic(options: { after?: string; limit: number }): Promise<string[]>;
  countPublic(): Promise<number>;
}
