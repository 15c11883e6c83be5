// Profiles: local ones in the store (setting one updates the user's member events in joined rooms),
// remote ones through federation `query/profile`.
import { Inject, Injectable } from '@nestjs/common';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { FederationHttpError } from '@fedgate/federation-client';
import { parseUserId } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import type { Requester } from '../client-server/requester';
import { RoomCommands } from '../rooms/room-commands';
import { RoomView } from '../rooms/room-view';

export type ProfileField = 'displayname' | 'avatar_url';

@Injectable()
export class Profiles {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient,
    private readonly commands: RoomCommands,
    private readonly view: RoomView,
  ) {}

  async get(userId: string): Promise<{ displayname?: string; avatar_url?: string }> {
    let server: string;
    try {
      server = parseUserId(userId).serverName;
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId)} is not a valid user ID`);
    }
    if (server === this.identity.serverName) {
      const profile = await this.store.profiles.get(userId);
      if (!profile) throw MatrixError.notFound('Profile was not found');
      return {
        ...(profile.displayname !== null ? { displayname: profile.displayname } : {}),
        ...(profile.avatarUrl !== null ? { avatar_url: profile.avatarUrl } : {}),
      };
    }
    try {
      const response = await this.federation.request<Record<string, unknown>>({ destination: server, method: 'GET', path: '/_matrix/federation/v1/query/profile', query: { user_id: userId } });
      const { displayname, avatar_url: avatarUrl } = response.body;
      return { ...(typeof displayname === 'string' ? { displayname } : {}), ...(typeof avatarUrl === 'string' ? { avatar_url: avatarUrl } : {}) };
    } catch (err) {
      if (err instanceof FederationHttpError && err.status === 404) throw MatrixError.notFound('Profile was not found');
      throw new MatrixError(502, 'M_UNKNOWN', `Could not ask ${server} for the profile of ${userId}: ${(err as Error).message}`);
    }
  }

  async set(requester: Requester, userId: string, field: ProfileField, body: unknown): Promise<Record<string, never>> {
    if (requester.userId !== userId) throw MatrixError.forbidden(`Cannot set another user's ${field}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw MatrixError.badJson('Body must be a JSON object');
    const value = (body as Record<string, unknown>)[field];
    if (value !== null && typeof value !== 'string') throw MatrixError.badJson(`${field} must be a string`);
    if (typeof value === 'string' && value.length > 256 && field === 'displayname') throw MatrixError.badJson('displayname is too long');
    const profile = await this.store.profiles.get(userId);
    if (!profile) {
      // The AS sender exists without registering.
      if (userId !== requester.service.senderUserId) throw MatrixError.notFound('Profile was not found');
      await this.store.profiles.create({ userId, displayname: null, avatarUrl: null, appServiceId: requester.service.id, createdTs: Date.now() });
    }
    await this.store.profiles.update(userId, field === 'displayname' ? { displayname: value } : { avatarUrl: value });
    for (const roomId of await this.store.memberships.roomsOf(userId, 'join')) {
      const member = await this.view.stateEvent(roomId, 'm.room.member', userId);
      if (!member || member.pdu.content.membership !== 'join') continue;
      const content: Record<string, unknown> = { ...member.pdu.content };
      if (value === null) delete content[field];
      else content[field] = value;
      if (content[field] === member.pdu.content[field]) continue;
      await this.commands.createEvent({ roomId, sender: userId, type: 'm.room.member', stateKey: userId, content: content as never });
    }
    return {};
  }
}
