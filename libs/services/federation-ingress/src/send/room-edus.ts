// Room EDUs (typing, read receipts) from a remote server: accepted only for rooms this server knows, from an
// origin with a joined user there that the room's server ACL allows, and only about the origin's own users.
// Presence likewise speaks only for the origin's own users.
// Everything left out is reported with its reason (the transaction's audit record lists it).
import { isObject, isUserOf, type Edu, type JsonObject } from '@fedgate/protocol';
import type { RoomAccess } from '../auth/room-access';
import { E2EE_EDU_TYPES, e2eeEduRefusal } from './e2ee-edus';

export type RoomEduRefusal = 'unknown_room' | 'origin_not_in_room' | 'server_acl' | 'not_origin_user' | 'malformed';

export interface DroppedRoomEdu {
  roomId?: string;
  reason: RoomEduRefusal;
}

/** The EDU types checked for room membership here; also the only EDU types named in metric labels. */
export const ROOM_EDU_TYPES: readonly string[] = ['m.typing', 'm.receipt'];

export class RoomEduChecks {
  /** Per transaction: room → refusal (or undefined when allowed). */
  private readonly verdicts = new Map<string, Promise<RoomEduRefusal | undefined>>();

  constructor(
    private readonly access: RoomAccess,
    private readonly origin: string,
  ) {}

  /** The EDU as it may pass on (receipts keep only the rooms that pass), or none, with what was left out. */
  async check(edu: Edu): Promise<{ edu?: Edu; dropped: DroppedRoomEdu[] }> {
    if (edu.edu_type === 'm.typing') return this.typing(edu);
    if (edu.edu_type === 'm.receipt') return this.receipt(edu);
    if (edu.edu_type === 'm.presence') return this.presence(edu);
    if (E2EE_EDU_TYPES.includes(edu.edu_type)) {
      const refusal = e2eeEduRefusal(edu, this.origin);
      return refusal ? { dropped: [refusal] } : { edu, dropped: [] };
    }
    // Any other EDU naming a room still answers to that room's server ACL.
    const roomId = (edu.content as { room_id?: unknown }).room_id;
    if (typeof roomId === 'string' && !(await this.access.aclAllows(roomId, this.origin))) return { dropped: [{ roomId, reason: 'server_acl' }] };
    return { edu, dropped: [] };
  }

  private async typing(edu: Edu): Promise<{ edu?: Edu; dropped: DroppedRoomEdu[] }> {
    const { room_id: roomId, user_id: userId } = edu.content as { room_id?: unknown; user_id?: unknown };
    if (typeof roomId !== 'string' || typeof userId !== 'string') return { dropped: [{ reason: 'malformed' }] };
    if (!isUserOf(userId, this.origin)) return { dropped: [{ roomId, reason: 'not_origin_user' }] };
    const refusal = await this.verdict(roomId);
    return refusal ? { dropped: [{ roomId, reason: refusal }] } : { edu, dropped: [] };
  }

  private presence(edu: Edu): { edu?: Edu; dropped: DroppedRoomEdu[] } {
    const push = (edu.content as { push?: unknown }).push;
    if (!Array.isArray(push)) return { dropped: [{ reason: 'malformed' }] };
    const dropped: DroppedRoomEdu[] = [];
    const own = push.filter((update) => {
      const reason = !isObject(update) ? 'malformed' : isUserOf(update.user_id, this.origin) ? undefined : 'not_origin_user';
      if (reason) dropped.push({ reason });
      return reason === undefined;
    });
    return own.length > 0 ? { edu: { ...edu, content: { ...edu.content, push: own } }, dropped } : { dropped };
  }

  private async receipt(edu: Edu): Promise<{ edu?: Edu; dropped: DroppedRoomEdu[] }> {
    const kept: JsonObject = {};
    const dropped: DroppedRoomEdu[] = [];
    for (const [roomId, byType] of Object.entries(edu.content)) {
      if (!isObject(byType)) {
        dropped.push({ roomId, reason: 'malformed' });
        continue;
      }
      const refusal = await this.verdict(roomId);
      if (refusal) {
        dropped.push({ roomId, reason: refusal });
        continue;
      }
      const ownUsersOnly: JsonObject = {};
      for (const [receiptType, byUser] of Object.entries(byType)) {
        if (!isObject(byUser)) continue;
        const users = Object.entries(byUser).filter(([userId]) => isUserOf(userId, this.origin));
        if (users.length < Object.keys(byUser).length) dropped.push({ roomId, reason: 'not_origin_user' });
        if (users.length > 0) ownUsersOnly[receiptType] = Object.fromEntries(users) as JsonObject;
      }
      if (Object.keys(ownUsersOnly).length > 0) kept[roomId] = ownUsersOnly;
    }
    return Object.keys(kept).length > 0 ? { edu: { ...edu, content: kept }, dropped } : { dropped };
  }

  private verdict(roomId: string): Promise<RoomEduRefusal | undefined> {
    let known = this.verdicts.get(roomId);
    if (!known) {
      known = this.judge(roomId);
      this.verdicts.set(roomId, known);
    }
    return known;
  }

  private async judge(roomId: string): Promise<RoomEduRefusal | undefined> {
    if ((await this.access.reads.roomVersion(roomId)) === undefined) return 'unknown_room';
    if (!(await this.access.aclAllows(roomId, this.origin))) return 'server_acl';
    if (!(await this.access.reads.joinedServers(roomId)).includes(this.origin)) return 'origin_not_in_room';
    return undefined;
  }
}
