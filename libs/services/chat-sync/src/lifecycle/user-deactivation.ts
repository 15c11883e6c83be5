// Deactivating a local user on the chat platform's word: the user leaves every room (local rooms by a
// leave event; rooms on other servers by the same leave, which egress federates; invites rejected,
// through the inviting server when this server is not in the room), the profile is erased when asked
// (after leaving, so no member event carries it again), and the user is marked deactivated first so
// nothing else is done as them meanwhile. Aliases the user created stay. Every step is audited.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import type { ApplicationService } from '../registration';
import { RoomActions } from '../rooms/room-actions';
import { auditLifecycle } from './lifecycle-audit';

/** The memberships a deactivated user gives up, and how: all by a leave of their own. */
const GIVEN_UP = ['join', 'invite', 'knock'] as const;

export const DEACTIVATION_REASON = 'Account deactivated';

export interface DeactivationOptions {
  erase: boolean;
  /** For the audit record: the call that asked. */
  method: string;
  path: string;
}

export interface DeactivationResult {
  userId: string;
  /** Rooms left, by the membership given up. */
  left: { roomId: string; membership: string }[];
  failed: { roomId: string; membership: string; errcode: string; error: string }[];
  erased: boolean;
  /** Account data entries removed by the erasure. */
  accountDataErased?: number;
  /** False when the user was already deactivated (the rooms are checked again all the same). */
  newlyDeactivated: boolean;
}

@Injectable()
export class UserDeactivation {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly actions: RoomActions,
  ) {}

  async deactivate(service: ApplicationService, userId: string, options: DeactivationOptions): Promise<DeactivationResult> {
    if (userId === service.senderUserId) throw MatrixError.forbidden(`${userId} is the application service's sender and cannot be deactivated`);
    const startedTs = Date.now();
    const { created, record } = await this.store.chatLifecycle.deactivate({ userId, deactivatedTs: startedTs, erased: options.erase, appServiceId: service.id });
    const result: DeactivationResult = { userId, left: [], failed: [], erased: false, newlyDeactivated: created };
    const requester = { service, userId };
    for (const membership of GIVEN_UP) {
      for (const roomId of await this.store.memberships.roomsOf(userId, membership)) {
        try {
          await this.actions.changeMembership(requester, roomId, 'leave', { reason: DEACTIVATION_REASON });
          result.left.push({ roomId, membership });
        } catch (err) {
          const matrix = err instanceof MatrixError ? err : MatrixError.unknown((err as Error).message);
          result.failed.push({ roomId, membership, errcode: matrix.errcode, error: matrix.error });
        }
      }
    }
    if (record.erased) {
      // Events are not touched: reads serve them redacted to whoever was not joined at them (EventVisibility.erasedFor).
      if (await this.store.profiles.get(userId)) await this.store.profiles.update(userId, { displayname: null, avatarUrl: null });
      result.accountDataErased = await this.store.accountData.deleteForUser(userId);
      await this.store.privateReceipts.deleteForUser(userId);
      result.erased = true;
    }
    await auditLifecycle(this.store, {
      service,
      serverName: this.identity.serverName,
      method: options.method,
      path: options.path,
      status: 200,
      outcome: result.failed.length === 0 ? 'ok' : 'error',
      reason: 'user_deactivated',
      startedTs,
      details: {
        userId,
        erase: options.erase,
        erased: result.erased,
        accountDataErased: result.accountDataErased ?? 0,
        newlyDeactivated: created,
        left: result.left.map((l) => ({ roomId: l.roomId, membership: l.membership })),
        failed: result.failed.map((f) => ({ ...f })),
      },
    });
    return result;
  }
}
