// Room-level access decisions shared by the guard and the handlers: server ACLs and visibility.
import { Inject, Injectable } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { RoomReads } from '../rooms/room-reads';
import { serverAclAllows } from './server-acl';

@Injectable()
export class RoomAccess {
  readonly reads: RoomReads;

  constructor(@Inject(STORE) store: Store) {
    this.reads = new RoomReads(store);
  }

  /** The current `m.room.server_acl` of the room allows `serverName` (an unknown room has no ACL). */
  async aclAllows(roomId: string, serverName: string): Promise<boolean> {
    return serverAclAllows(await this.reads.currentStateContent(roomId, 'm.room.server_acl'), serverName);
  }

  /** The room's current ACL read once, as a check of many server lists (the PDUs of one transaction). */
  async aclCheck(roomId: string): Promise<(servers: readonly string[]) => string | undefined> {
    const acl = await this.reads.currentStateContent(roomId, 'm.room.server_acl');
    return (servers) => servers.find((server) => !serverAclAllows(acl, server));
  }

  /** The first of `servers` the room's ACL denies, if any. */
  async deniedByAcl(roomId: string, servers: readonly string[]): Promise<string | undefined> {
    const acl = await this.reads.currentStateContent(roomId, 'm.room.server_acl');
    return servers.find((server) => !serverAclAllows(acl, server));
  }
}
