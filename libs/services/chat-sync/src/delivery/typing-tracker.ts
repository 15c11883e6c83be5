// Who is typing in which room, as remote servers told us: bounded in rooms and users per room, with every
// entry timing out (a remote's own timeout is capped), so a peer can neither grow it nor pin a user as typing.

import { LRUCache } from 'lru-cache';

export interface TypingLimits {
  /** Rooms tracked at most; the least recently updated room is forgotten first. */
  maxRooms: number;
  /** Users per room at most; the one typing longest is forgotten first. */
  maxUsersPerRoom: number;
  /** Longest typing a remote may announce (ms); also the default when it names none. */
  maxTimeoutMs: number;
}

export const DEFAULT_TYPING_LIMITS: TypingLimits = { maxRooms: 10_000, maxUsersPerRoom: 100, maxTimeoutMs: 60_000 };

export class TypingTracker {
  /** Room → user → typing until (ms); the least recently updated room goes first. User map order is update order, oldest first. */
  private readonly rooms: LRUCache<string, Map<string, number>>;

  constructor(private readonly limits: TypingLimits = DEFAULT_TYPING_LIMITS) {
    this.rooms = new LRUCache({ max: limits.maxRooms });
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** Applies one typing notice; returns the users typing in the room now. */
  update(roomId: string, userId: string, typing: boolean, timeoutMs: unknown, now: number): string[] {
    const room = this.rooms.get(roomId) ?? new Map<string, number>();
    room.delete(userId);
    if (typing) {
      const timeout = typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs >= 0 ? Math.min(timeoutMs, this.limits.maxTimeoutMs) : this.limits.maxTimeoutMs;
      room.set(userId, now + timeout);
      while (room.size > this.limits.maxUsersPerRoom) room.delete(room.keys().next().value as string);
    }
    for (const [user, until] of room) if (until <= now) room.delete(user);
    if (room.size > 0) this.rooms.set(roomId, room);
    else this.rooms.delete(roomId);
    return [...room.keys()];
  }

  /** Forgets what timed out by `now`; returns each room that changed with the users still typing there. */
  expire(now: number): Array<{ roomId: string; userIds: string[] }> {
    const changed: Array<{ roomId: string; userIds: string[] }> = [];
    for (const [roomId, room] of [...this.rooms.entries()].reverse()) {
      let removed = false;
      for (const [user, until] of room) {
        if (until > now) continue;
        room.delete(user);
        removed = true;
      }
      if (!removed) continue;
      if (room.size === 0) this.rooms.delete(roomId);
      changed.push({ roomId, userIds: [...room.keys()] });
    }
    return changed;
  }

  /** When the next entry times out, if any. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const room of this.rooms.values()) for (const until of room.values()) if (next === undefined || until < next) next = until;
    return next;
  }
}
