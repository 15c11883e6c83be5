// Room aliases: local ones in the store, remote ones through federation `query/directory`, and
// aliases in an application service's namespace created on demand by asking that service.
import { Inject, Injectable } from '@nestjs/common';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { FederationHttpError } from '@fedgate/federation-client';
import { parseRoomAlias } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import type { Requester } from '../client-server/requester';
import { AppServiceClient } from '../push';
import { RoomView } from '../rooms/room-view';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';

export interface ResolvedAlias {
  roomId: string;
  servers: string[];
}

@Injectable()
export class AliasDirectory {
  private readonly appServiceClient = new AppServiceClient({ requestTimeoutMs: 10_000 });

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    private readonly view: RoomView,
  ) {}

  parse(alias: string): { localpart: string; server: string } {
    try {
      const parsed = parseRoomAlias(alias);
      return { localpart: parsed.localpart, server: parsed.serverName };
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(alias)} is not a valid room alias`);
    }
  }

  /** Only local aliases, and none in another AS's exclusive namespace (M_EXCLUSIVE). */
  assertMayCreate(requester: Requester, alias: string): void {
    const { server } = this.parse(alias);
    if (server !== this.identity.serverName) throw MatrixError.invalidParam(`Room alias must be on this server (${this.identity.serverName})`);
    const owner = this.registry.exclusiveOwnerOfAlias(alias);
    if (owner && owner !== requester.service) throw new MatrixError(400, 'M_EXCLUSIVE', `${alias} is in another application service's exclusive namespace`);
  }

  async create(requester: Requester, alias: string, roomId: string): Promise<void> {
    this.assertMayCreate(requester, alias);
    // Only a member may name a room: otherwise any service could squat aliases on others' rooms, and an
    // unknown room and a room one is not in answer alike, so the call does not tell whether a room exists.
    if ((await this.view.membership(roomId, requester.userId)) !== 'join') throw MatrixError.forbidden(`${requester.userId} is not in room ${roomId}`);
    const stored = await this.store.aliases.create({ alias, roomId, servers: [this.identity.serverName], creator: requester.userId, createdTs: Date.now() });
    if (!stored.created) throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
  }

  async remove(requester: Requester, alias: string): Promise<void> {
    const { server } = this.parse(alias);
    const record = server === this.identity.serverName ? await this.store.aliases.get(alias) : undefined;
    if (!record) throw MatrixError.notFound(`Room alias ${alias} not found`);
    const owner = this.registry.exclusiveOwnerOfAlias(alias);
    if (record.creator !== requester.userId && owner !== requester.service) throw MatrixError.forbidden(`You may not delete ${alias}`);
    await this.store.aliases.remove(alias);
  }

  async resolve(alias: string): Promise<ResolvedAlias> {
    const { server } = this.parse(alias);
    if (server === this.identity.serverName) {
      const record = (await this.store.aliases.get(alias)) ?? (await this.askAppServices(alias));
      if (!record) throw MatrixError.notFound(`Room alias ${alias} not found`);
      return { roomId: record.roomId, servers: record.servers };
    }
    try {
      const response = await this.federation.request<{ room_id?: unknown; servers?: unknown }>({
        destination: server,
        method: 'GET',
        path: '/_matrix/federation/v1/query/directory',
        query: { room_alias: alias },
      });
      const { room_id: roomId, servers } = response.body;
      if (typeof roomId !== 'string') throw new MatrixError(502, 'M_UNKNOWN', `${server} answered query/directory without a room_id`);
      return { roomId, servers: Array.isArray(servers) ? servers.filter((s): s is string => typeof s === 'string') : [server] };
    } catch (err) {
      if (err instanceof MatrixError) throw err;
      if (err instanceof FederationHttpError && err.status === 404) throw MatrixError.notFound(`Room alias ${alias} not found`);
      throw new MatrixError(502, 'M_UNKNOWN', `Could not ask ${server} about ${alias}: ${(err as Error).message}`);
    }
  }

  /** The spec's alias query: an AS whose namespace covers the alias may create the room now. */
  private async askAppServices(alias: string) {
    for (const service of this.registry.servicesForAlias(alias)) {
      try {
        if (await this.appServiceClient.queryRoomAlias(service.registration, alias)) {
          const record = await this.store.aliases.get(alias);
          if (record) return record;
        }
      } catch {
        // An AS that cannot answer is the same as one that has no such room.
      }
    }
    return undefined;
  }
}
