// `POST /rooms/{roomId}/invite` with `id_server`, `id_access_token`, `medium`, `address` (the client-server
// third-party invite): the address is looked up at the identity server; bound → an ordinary invite of that user;
// not bound → the invite is stored at the identity server and its token and keys go into the room as an
// m.room.third_party_invite (onbind and exchange_third_party_invite finish it, see federation-ingress).
// Everything that can be checked here is checked before the identity server is asked, and nothing goes into
// the room unless the identity server's answers were whole. Each attempt leaves an audit record (no address).
import { Inject, Injectable } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { isSupportedRoomVersion, roomVersionRules, type JsonObject } from '@fedgate/protocol';
import { powerLevelsOf, toRoomEvent, userPowerLevel } from '@fedgate/room-state';
import { FEDGATE_CONFIG, MatrixError } from '@fedgate/service-kit';
import { stateTupleKey, type AuditOutcome } from '@fedgate/store';
import type { Requester } from '../client-server/requester';
import { appServiceOrigin } from '../lifecycle/lifecycle-audit';
import { RoomActions, assertRoomId } from '../rooms/room-actions';
import { RoomCommands } from '../rooms/room-commands';
import { RoomView, type CurrentState } from '../rooms/room-view';
import { IdentityServerClient, IdentityServerError, type StoreInviteRequest } from './identity-server-client';

export interface ThirdPartyInviteBody {
  idServer: string;
  idAccessToken: string;
  medium: string;
  address: string;
}

/** Whether an invite body is the third-party form (it names an identity server or an address, not a user). */
export function isThirdPartyInviteBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const fields = body as Record<string, unknown>;
  return fields.user_id === undefined && (fields.id_server !== undefined || fields.medium !== undefined || fields.address !== undefined);
}

export function parseThirdPartyInviteBody(body: unknown): ThirdPartyInviteBody {
  const fields = body as Record<string, unknown>;
  const text = (name: string, max: number): string => {
    const value = fields[name];
    if (value === undefined) throw MatrixError.missingParam(`${name} is required`);
    if (typeof value !== 'string' || value === '' || value.length > max) throw MatrixError.badJson(`${name} must be a non-empty string of at most ${max} characters`);
    return value;
  };
  return { idServer: text('id_server', 255), idAccessToken: text('id_access_token', 1024), medium: text('medium', 64), address: text('address', 512) };
}

/** How an identity server's failure is answered: what the client can act on, with the identity server's own word. */
export function identityServerMatrixError(error: IdentityServerError): MatrixError {
  const extra = error.upstream ? { identity_server_status: error.upstream.status, ...(error.upstream.errcode ? { identity_server_errcode: error.upstream.errcode } : {}) } : undefined;
  if (error.failure === 'refused' && (error.upstream?.status === 401 || error.upstream?.status === 403)) {
    return new MatrixError(403, 'M_THREEPID_AUTH_FAILED', `${error.message}: check id_access_token and the identity server's terms`, extra);
  }
  return new MatrixError(502, 'M_UNKNOWN', `${error.message}; nothing was sent to the room`, extra);
}

type InviteResult = 'invited' | 'third_party_invite';

/** Third-party invites one createRoom may carry (`invite_3pid`). */
export const MAX_CREATE_ROOM_THIRD_PARTY_INVITES = 20;

@Injectable()
export class ThirdPartyInviteSender {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig,
    private readonly actions: RoomActions,
    private readonly commands: RoomCommands,
    private readonly view: RoomView,
  ) {}

  async invite(requester: Requester, roomId: string, body: unknown): Promise<Record<string, never>> {
    const startedTs = Date.now();
    assertRoomId(roomId);
    const request = parseThirdPartyInviteBody(body);
    try {
      const result = await this.send(requester, roomId, request);
      await this.audit(requester, roomId, request, startedTs, 200, 'ok', 'third_party_invite_sent', { result });
      return {};
    } catch (error) {
      const refusal = error instanceof IdentityServerError ? identityServerMatrixError(error) : error;
      if (refusal instanceof MatrixError) {
        await this.audit(requester, roomId, request, startedTs, refusal.status, refusal.status >= 500 ? 'error' : 'rejected', 'third_party_invite_refused', { errcode: refusal.errcode, error: refusal.error });
      }
      throw refusal;
    }
  }

  /** createRoom's `invite_3pid`, checked (shape, trusted identity servers) before the room is made. */
  parseCreateRoomInvites(body: unknown): unknown[] {
    const list = typeof body === 'object' && body !== null ? (body as { invite_3pid?: unknown }).invite_3pid : undefined;
    if (list === undefined) return [];
    if (!Array.isArray(list) || list.length > MAX_CREATE_ROOM_THIRD_PARTY_INVITES) throw MatrixError.badJson(`invite_3pid must be a list of at most ${MAX_CREATE_ROOM_THIRD_PARTY_INVITES} third-party invites`);
    for (const entry of list) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw MatrixError.badJson('Each invite_3pid entry must be an object');
      this.trustedIdentityServer(parseThirdPartyInviteBody(entry).idServer);
    }
    return list;
  }

  /** The `invite_3pid` of a room just created; a refusal names the room, which exists by then. */
  async inviteToNewRoom(requester: Requester, roomId: string, invites: readonly unknown[]): Promise<void> {
    for (const invite of invites) {
      try {
        await this.invite(requester, roomId, invite);
      } catch (error) {
        if (!(error instanceof MatrixError)) throw error;
        throw new MatrixError(error.status, error.errcode, `${error.error} (room ${roomId} was created)`, { ...error.extra, room_id: roomId });
      }
    }
  }

  private trustedIdentityServer(idServer: string): { serverName: string; baseUrl?: string } {
    const trusted = this.config.thirdPartyInvites.identityServers.find((s) => s.serverName === idServer);
    if (!trusted) throw new MatrixError(403, 'M_SERVER_NOT_TRUSTED', `This server does not use the identity server ${idServer}`);
    return trusted;
  }

  private async send(requester: Requester, roomId: string, request: ThirdPartyInviteBody): Promise<InviteResult> {
    const trusted = this.trustedIdentityServer(request.idServer);
    const state = await this.mayInvite(requester, roomId);
    const client = new IdentityServerClient(request.idServer, trusted.baseUrl ?? `https://${request.idServer}`, request.idAccessToken, this.config.thirdPartyInvites.requestTimeoutMs);

    const mxid = await client.lookup(request.medium, request.address);
    if (mxid !== undefined) {
      await this.actions.changeMembership(requester, roomId, 'invite', { user_id: mxid });
      return 'invited';
    }
    const stored = await client.storeInvite(await this.storeInviteRequest(requester, roomId, request, state));
    // A token already in the room would replace that pending invite's keys with these.
    if (await this.view.stateEvent(roomId, 'm.room.third_party_invite', stored.token)) {
      throw new IdentityServerError('invalid_answer', `Identity server ${request.idServer}: store-invite gave a token already used in this room`);
    }
    const [first] = stored.publicKeys;
    const content = { display_name: stored.displayName, key_validity_url: first.key_validity_url, public_key: first.public_key, public_keys: stored.publicKeys };
    await this.commands.createEvent({ roomId, sender: requester.userId, type: 'm.room.third_party_invite', stateKey: stored.token, content: content as never });
    return 'third_party_invite';
  }

  /** The inviter must be joined with the invite power level (what the auth rules ask of m.room.third_party_invite). */
  private async mayInvite(requester: Requester, roomId: string): Promise<CurrentState> {
    const state = await this.view.currentState(roomId);
    const member = state?.events.get(stateTupleKey('m.room.member', requester.userId));
    // Unknown room and not a member answer alike.
    if (!state || !(await this.actions.isInRoom(roomId)) || (member?.pdu.content as { membership?: unknown } | undefined)?.membership !== 'join') {
      throw MatrixError.forbidden(`You are not in room ${roomId}`);
    }
    if (!isSupportedRoomVersion(state.room.roomVersion)) throw MatrixError.forbidden(`Room ${roomId} has an unsupported version`);
    const rules = roomVersionRules(state.room.roomVersion);
    const powerLevels = stateEvent(state, 'm.room.power_levels');
    if (userPowerLevel(requester.userId, powerLevels, stateEvent(state, 'm.room.create'), rules) < powerLevelsOf(powerLevels, rules).invite) {
      throw MatrixError.forbidden(`${requester.userId} may not invite users to ${roomId}`);
    }
    return state;
  }

  /** What the identity server may show the invitee (room name, alias, avatar, join rules, type; the inviter's profile). */
  private async storeInviteRequest(requester: Requester, roomId: string, request: ThirdPartyInviteBody, state: CurrentState): Promise<StoreInviteRequest> {
    const field = (type: string, name: string): string | undefined => {
      const value = stateEvent(state, type)?.content[name];
      return typeof value === 'string' && value !== '' ? value : undefined;
    };
    const profile = await this.store.profiles.get(requester.userId);
    const optional: Partial<StoreInviteRequest> = {
      room_alias: field('m.room.canonical_alias', 'alias'),
      room_avatar_url: field('m.room.avatar', 'url'),
      room_join_rules: field('m.room.join_rules', 'join_rule'),
      room_name: field('m.room.name', 'name'),
      room_type: field('m.room.create', 'type'),
      sender_display_name: profile?.displayname || undefined,
      sender_avatar_url: profile?.avatarUrl || undefined,
    };
    const present = Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined));
    return { medium: request.medium, address: request.address, room_id: roomId, sender: requester.userId, ...present };
  }

  private async audit(requester: Requester, roomId: string, request: ThirdPartyInviteBody, startedTs: number, status: number, outcome: AuditOutcome, reason: string, details: JsonObject): Promise<void> {
    const now = Date.now();
    // The address stays out: the audit is read by operators, and the spec keeps addresses out of rooms too.
    await this.store.audit.append({
      direction: 'in',
      origin: appServiceOrigin(requester.service),
      destination: this.identity.serverName,
      method: 'POST',
      path: `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`,
      ts: now,
      durationMs: now - startedTs,
      status,
      outcome,
      reason,
      roomId,
      sender: requester.userId,
      details: { ...details, id_server: request.idServer, medium: request.medium },
    });
  }
}

function stateEvent(state: CurrentState, type: string) {
  const record = state.events.get(stateTupleKey(type, ''));
  return record && toRoomEvent(record.pdu, record.eventId);
}
