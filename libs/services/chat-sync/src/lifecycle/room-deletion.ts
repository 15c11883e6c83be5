// Deleting a room on the chat platform's word, as a homeserver's delete-room admin call does for its
// local side: every local member leaves (joined, invited and knocking alike, each by a leave of their
// own carrying the reason, so no power level is needed and egress tells the other servers), the
// room's local aliases are deleted, and the deletion is recorded: `block` refuses later local joins,
// `purge` stops serving the room's history on the client-server side. The event DAG itself is never
// deleted: other servers may still ask for events and auth chains this server signed.
//
// Who may: an application service that may act as every local member of the room (in its namespace,
// none claimed exclusively by another service). A room with a local member belonging to someone else
// is refused whole, before anything changes. The local aliases pointing at the room go with it, whoever
// made them: an alias cannot hold a room hostage. A deletion record belongs to the service that made it:
// no other service may delete the room again (which would overwrite the record) or read its status.
// Blocking a room this server has never seen is an operator act, not an application service's.
import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import type { RoomDeletionRecord } from '@fedgate/store';
import { assertRoomId, RoomActions } from '../rooms/room-actions';
import { RoomView } from '../rooms/room-view';
import { ApplicationServiceRegistry, type ApplicationService } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';
import { auditLifecycle } from './lifecycle-audit';

export const DEFAULT_DELETION_REASON = 'This room has been deleted';
const GIVEN_UP = ['join', 'invite', 'knock'];

export interface RoomDeletionOptions {
  block: boolean;
  purge: boolean;
  /** The reason every local member's leave carries. */
  message: string;
}

/** The delete-room admin call's `shutdown_room` result. */
export interface ShutdownResult {
  kicked_users: string[];
  failed_to_kick_users: string[];
  local_aliases: string[];
  new_room_id: null;
  [key: string]: unknown;
}

/** Reads the admin call's body; options fedgate cannot honour are refused, not ignored. */
export function parseRoomDeletionBody(body: unknown): RoomDeletionOptions {
  const fields = body === undefined || body === null ? {} : body;
  if (typeof fields !== 'object' || Array.isArray(fields) || Buffer.isBuffer(fields)) throw MatrixError.badJson('Body must be a JSON object');
  const { block, purge, message, new_room_user_id: newRoomUserId, force_purge: forcePurge } = fields as Record<string, unknown>;
  for (const [name, value] of Object.entries({ block, purge, force_purge: forcePurge })) {
    if (value !== undefined && typeof value !== 'boolean') throw MatrixError.badJson(`${name} must be a boolean`);
  }
  if (message !== undefined && typeof message !== 'string') throw MatrixError.badJson('message must be a string');
  if (newRoomUserId !== undefined && newRoomUserId !== null) {
    // Moving the local members into a new notice room is a homeserver's moderation tool; a gateway's
    // members are the chat platform's users, whose rooms the platform itself decides.
    throw MatrixError.invalidParam('new_room_user_id is not supported: fedgate removes the local members without moving them to a new room');
  }
  return { block: block === true, purge: purge !== false, message: typeof message === 'string' && message !== '' ? message : DEFAULT_DELETION_REASON };
}

@Injectable()
export class RoomDeletion {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    private readonly actions: RoomActions,
    private readonly view: RoomView,
  ) {}

  async delete(service: ApplicationService, roomId: string, options: RoomDeletionOptions, call: { method: string; path: string }): Promise<RoomDeletionRecord> {
    assertRoomId(roomId);
    const startedTs = Date.now();
    const room = await this.store.rooms.get(roomId);
    if (!room && !options.block) throw MatrixError.notFound(`Unknown room ${roomId}`);
    if (!room) throw MatrixError.forbidden(`${roomId} is not known here; blocking a room this server has never seen is for the operator, not an application service`);
    const earlier = await this.store.chatLifecycle.getRoomDeletion(roomId);
    if (earlier && earlier.appServiceId !== service.id) throw MatrixError.forbidden(`${roomId} was deleted by another application service`);
    const state = room ? await this.view.currentState(roomId) : undefined;
    const localMembers = (state ? RoomView.members(state) : [])
      .filter((member) => this.isLocal(member.stateKey ?? '') && GIVEN_UP.includes(String((member.pdu.content as { membership?: unknown }).membership)))
      .map((member) => member.stateKey as string);
    const aliases = await this.store.aliases.forRoom(roomId);
    const foreignMember = localMembers.find((userId) => this.registry.actingRefusal(service, userId) !== undefined);
    if (foreignMember) throw MatrixError.forbidden(`${foreignMember} is a member of ${roomId} and not in the application service's namespace`);

    const result: ShutdownResult = { kicked_users: [], failed_to_kick_users: [], local_aliases: [], new_room_id: null };
    const failures: { userId: string; errcode: string; error: string }[] = [];
    for (const userId of localMembers) {
      try {
        await this.actions.changeMembership({ service, userId }, roomId, 'leave', { reason: options.message });
        result.kicked_users.push(userId);
      } catch (err) {
        const matrix = err instanceof MatrixError ? err : MatrixError.unknown((err as Error).message);
        result.failed_to_kick_users.push(userId);
        failures.push({ userId, errcode: matrix.errcode, error: matrix.error });
      }
    }
    for (const alias of aliases) {
      if (await this.store.aliases.remove(alias.alias)) result.local_aliases.push(alias.alias);
    }
    const record: RoomDeletionRecord = {
      roomId,
      deleteId: randomBytes(12).toString('base64url'),
      deletedTs: Date.now(),
      appServiceId: service.id,
      blocked: options.block,
      purged: options.purge,
      result: result as unknown as RoomDeletionRecord['result'],
    };
    await this.store.chatLifecycle.recordRoomDeletion(record);
    await auditLifecycle(this.store, {
      service,
      serverName: this.identity.serverName,
      method: call.method,
      path: call.path,
      status: 200,
      outcome: failures.length === 0 ? 'ok' : 'error',
      reason: 'room_deleted',
      startedTs,
      details: { roomId, deleteId: record.deleteId, block: options.block, purge: record.purged, message: options.message, ...result, failures },
    });
    return record;
  }

  private isLocal(userId: string): boolean {
    return userId.endsWith(`:${this.identity.serverName}`);
  }
}
