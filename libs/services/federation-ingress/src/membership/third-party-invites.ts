// Third-party invites, once the invited address is bound to a Matrix user:
//   - `3pid/onbind` (the identity server tells the bound user's server, i.e. us): for each pending invite, the
//     inviter's server turns it into a real invite — ourselves when the inviter is ours, else that server through
//     `exchange_third_party_invite`;
//   - `exchange_third_party_invite` (the invitee's server asks us, the inviter's): the invite is checked against
//     the room's `m.room.third_party_invite` (token, sender, identity server's signature, and the signing key still
//     valid by its trusted identity server: key-validity.ts) and issued as the
//     inviter's own invite event, which state-resolver authorises and sends to the invitee's server.
import { Inject, Injectable, Optional } from '@nestjs/common';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { isObject, isUserOf, parseRoomId, parseUserId, serverNameOf, type JsonObject } from '@fedgate/protocol';
import type { FedgateConfig } from '@fedgate/config';
import { thirdPartyInvitePublicKeys, toRoomEvent, verifyThirdPartyInviteSignature } from '@fedgate/room-state';
import { FEDGATE_CONFIG, MatrixError } from '@fedgate/service-kit';
import { stateTupleKey } from '@fedgate/store';
import { RoomAccess } from '../auth/room-access';
import { KeyValidityChecker } from './key-validity';
import { StateResolverCommands } from './state-resolver-commands';

/** Pending invites one onbind call may carry. */
export const MAX_ONBIND_INVITES = 20;

export interface ThirdPartyInviteRequest {
  roomId: string;
  /** The inviter (a user of the inviting server). */
  sender: string;
  /** The invitee, bound to the address. */
  target: string;
  signed: JsonObject;
}

export interface OnbindOutcome {
  roomId: string;
  sender: string;
  ok: boolean;
  error?: string;
}

function validUserId(value: unknown, field: string): string {
  try {
    if (typeof value === 'string') return parseUserId(value) && value;
  } catch {
    // answered below
  }
  throw MatrixError.badJson(`${field} must be a user ID`);
}

function validRoomId(value: unknown, field: string): string {
  try {
    if (typeof value === 'string') return parseRoomId(value) && value;
  } catch {
    // answered below
  }
  throw MatrixError.badJson(`${field} must be a room ID`);
}

/** `signed` of a third-party invite: for `target`, with a token and signatures. */
function validSigned(value: unknown, target: string): JsonObject {
  if (!isObject(value) || typeof value.token !== 'string' || value.token === '' || !isObject(value.signatures)) throw MatrixError.badJson('signed must hold mxid, token and signatures');
  if (value.mxid !== target) throw MatrixError.badJson('signed.mxid is not the invited user');
  return value as JsonObject; // parsed from a JSON body
}

@Injectable()
export class ThirdPartyInvites {
  private readonly keyValidity: KeyValidityChecker;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly access: RoomAccess,
    private readonly commands: StateResolverCommands,
    @Optional() @Inject(FEDERATION_CLIENT) private readonly federation?: FederationHttpClient,
    @Optional() @Inject(FEDGATE_CONFIG) config?: FedgateConfig,
  ) {
    // Without settings no identity server is trusted: an invite whose key must be checked is refused.
    this.keyValidity = new KeyValidityChecker(config?.thirdPartyInvites ?? { identityServers: [], requestTimeoutMs: 10_000 });
  }

  /** The body of `exchange_third_party_invite`, checked for shape and against the path's room. */
  parseExchange(roomId: string, body: unknown): ThirdPartyInviteRequest {
    if (!isObject(body)) throw MatrixError.badJson('Body must be an event object');
    if (body.type !== 'm.room.member') throw MatrixError.badJson('type must be m.room.member');
    if (body.room_id !== roomId) throw MatrixError.badJson(`room_id must be ${roomId}`);
    const sender = validUserId(body.sender, 'sender');
    const target = validUserId(body.state_key, 'state_key');
    const content = body.content;
    if (!isObject(content) || content.membership !== 'invite' || !isObject(content.third_party_invite)) throw MatrixError.badJson('content must be an invite with third_party_invite');
    return { roomId, sender, target, signed: validSigned(content.third_party_invite.signed, target) };
  }

  /**
   * Issues the invite as the inviter (a user of ours). `origin` is the server asking: the invitee's own server
   * (or this one, from onbind), so no third server can make us issue invites.
   */
  async exchange(request: ThirdPartyInviteRequest, origin: string): Promise<void> {
    const { roomId, sender, target, signed } = request;
    if (!isUserOf(sender, this.identity.serverName)) throw MatrixError.invalidParam(`The inviter ${sender} is not on this server`);
    if (!isUserOf(target, origin)) throw MatrixError.forbidden(`${origin} may only exchange invites for its own users`);
    const state = await this.access.reads.currentState(roomId);
    if (!state) throw MatrixError.notFound(`Unknown room ${roomId}`);
    const inviteId = state.get(stateTupleKey('m.room.third_party_invite', String(signed.token)));
    const inviteRecord = inviteId ? await this.store.events.get(inviteId) : undefined;
    if (!inviteRecord) throw MatrixError.forbidden(`No third-party invite with token ${String(signed.token)} in ${roomId}`);
    const invite = toRoomEvent(inviteRecord.pdu, inviteRecord.eventId);
    if (invite.sender !== sender) throw MatrixError.forbidden('The third-party invite was not sent by this inviter');
    await this.keyValidity.check(invite, signed);
    const displayName = typeof invite.content.display_name === 'string' ? invite.content.display_name : undefined;
    await this.commands.createEvent({
      roomId,
      sender,
      type: 'm.room.member',
      stateKey: target,
      content: { membership: 'invite', third_party_invite: { ...(displayName !== undefined ? { display_name: displayName } : {}), signed } },
      // A retried exchange (or onbind) answers with the same invite.
      txnId: `3pid-invite:${String(signed.token)}:${target}`,
    });
  }

  /** The `onbind` body: the bound user must be ours; each pending invite is for them. */
  parseOnbind(body: unknown): ThirdPartyInviteRequest[] {
    if (!isObject(body)) throw MatrixError.badJson('Body must be a JSON object');
    const target = validUserId(body.mxid, 'mxid');
    if (!isUserOf(target, this.identity.serverName)) throw MatrixError.invalidParam(`${target} is not a user of this server`);
    if (!Array.isArray(body.invites)) throw MatrixError.badJson('invites must be an array');
    if (body.invites.length > MAX_ONBIND_INVITES) throw MatrixError.invalidParam(`At most ${MAX_ONBIND_INVITES} invites per call`);
    return body.invites.map((invite, i) => {
      if (!isObject(invite)) throw MatrixError.badJson(`invites[${i}] must be an object`);
      if (invite.mxid !== target) throw MatrixError.badJson(`invites[${i}].mxid is not ${target}`);
      return { roomId: validRoomId(invite.room_id, `invites[${i}].room_id`), sender: validUserId(invite.sender, `invites[${i}].sender`), target, signed: validSigned(invite.signed, target) };
    });
  }

  /**
   * Each invite to its inviter's server, all at once (at most MAX_ONBIND_INVITES), so one slow server does not hold
   * the others past the request's time; an invite that fails is reported with its reason, the others go on.
   */
  async onbind(invites: readonly ThirdPartyInviteRequest[]): Promise<OnbindOutcome[]> {
    return Promise.all(
      invites.map(async (invite): Promise<OnbindOutcome> => {
        try {
          await this.exchangeWith(serverNameOf(invite.sender) ?? '', invite);
          return { roomId: invite.roomId, sender: invite.sender, ok: true };
        } catch (err) {
          const error = err instanceof MatrixError ? `${err.errcode}: ${err.error}` : (err as Error).message;
          return { roomId: invite.roomId, sender: invite.sender, ok: false, error };
        }
      }),
    );
  }

  private async exchangeWith(server: string, invite: ThirdPartyInviteRequest): Promise<void> {
    if (server === this.identity.serverName) return this.exchange(invite, this.identity.serverName);
    await this.refuseProofTheRoomDoesNotVouchFor(invite);
    if (!this.federation) throw MatrixError.unknown('No federation client to reach the inviting server', 502);
    const started = Date.now();
    const path = `/_matrix/federation/v1/exchange_third_party_invite/${encodeURIComponent(invite.roomId)}`;
    const event = { type: 'm.room.member', room_id: invite.roomId, sender: invite.sender, state_key: invite.target, content: { membership: 'invite', third_party_invite: { signed: invite.signed } } };
    try {
      await this.federation.request({ destination: server, method: 'PUT', path, body: event });
      await this.auditOut(server, path, started, 200, 'ok', undefined);
    } catch (err) {
      const status = (err as { status?: number }).status ?? 502;
      await this.auditOut(server, path, started, status, 'error', (err as Error).message);
      throw err;
    }
  }

  /**
   * When this server holds the room's m.room.third_party_invite for the token (it is in the room), it checks the
   * proof itself, as the room's servers will, and asks the inviting server nothing for a proof that cannot pass.
   * Without that state the inviting server is the one to check.
   */
  private async refuseProofTheRoomDoesNotVouchFor(invite: ThirdPartyInviteRequest): Promise<void> {
    const state = await this.access.reads.currentState(invite.roomId);
    const pendingId = state?.get(stateTupleKey('m.room.third_party_invite', String(invite.signed.token)));
    const pending = pendingId ? await this.store.events.get(pendingId) : undefined;
    if (!pending) return;
    const event = toRoomEvent(pending.pdu, pending.eventId);
    if (event.sender !== invite.sender) throw MatrixError.forbidden('The third-party invite was not sent by this inviter');
    if (!verifyThirdPartyInviteSignature(invite.signed, thirdPartyInvitePublicKeys(event))) {
      throw MatrixError.forbidden("The identity server's signature does not verify with the keys of the room's m.room.third_party_invite");
    }
  }

  private async auditOut(destination: string, path: string, started: number, status: number, outcome: 'ok' | 'error', error: string | undefined): Promise<void> {
    await this.store.audit.append({
      direction: 'out',
      origin: this.identity.serverName,
      destination,
      method: 'PUT',
      path,
      ts: started,
      durationMs: Date.now() - started,
      status,
      outcome,
      ...(error !== undefined ? { reason: 'third_party_invite_exchange_failed', details: { error } } : {}),
    });
  }
}
