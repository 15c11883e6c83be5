// Tells the servers that share a room with a user that the user's device list changed: one
// `m.device_list_update` EDU per change, chained by the user's device-list stream id (`prev_id`: the
// id before it), so a receiver that misses one sees the gap and resyncs with `/user/devices`. Egress
// queues EDUs per destination in the store, in order.
import { Inject, Injectable } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type ServerIdentity, type Store } from '@fedgate/platform';
import type { JsonObject } from '@fedgate/bus';
import type { KeyObject } from '@fedgate/store';

export interface DeviceListChange {
  userId: string;
  deviceId: string;
  streamId: number;
  deleted?: boolean;
  keys?: KeyObject | null;
}

@Injectable()
export class DeviceListAnnouncer {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  /** The other servers in the rooms `userId` is joined to. */
  async interestedServers(userId: string): Promise<string[]> {
    const servers = new Set<string>();
    for (const roomId of await this.store.memberships.roomsOf(userId, 'join')) {
      for (const server of await this.store.rooms.getJoinedServers(roomId)) if (server !== this.identity.serverName) servers.add(server);
    }
    return [...servers].sort();
  }

  async announce(change: DeviceListChange): Promise<void> {
    const destinations = await this.interestedServers(change.userId);
    if (destinations.length === 0) return;
    const content: JsonObject = {
      user_id: change.userId,
      device_id: change.deviceId,
      stream_id: change.streamId,
      prev_id: change.streamId > 1 ? [change.streamId - 1] : [],
      ...(change.deleted ? { deleted: true } : {}),
      ...(change.keys ? { keys: change.keys as JsonObject } : {}),
    };
    // One stream id is one change: a publish retried after a crash is deduplicated by the bus.
    const eduId = `device-list:${change.userId}:${change.streamId}`;
    await this.bus.publish(this.topology.outboundEdu.subject, { eduId, eduType: 'm.device_list_update', content, destinations, createdAt: Date.now() }, { messageId: eduId });
  }

  /** `m.signing_key_update`: the user's new master and self-signing keys (the user-signing key stays private to them). */
  async announceSigningKeys(userId: string, streamId: number, keys: { master?: KeyObject; self_signing?: KeyObject }): Promise<void> {
    if (!keys.master && !keys.self_signing) return;
    const destinations = await this.interestedServers(userId);
    if (destinations.length === 0) return;
    const content: JsonObject = { user_id: userId, ...(keys.master ? { master_key: keys.master } : {}), ...(keys.self_signing ? { self_signing_key: keys.self_signing } : {}) };
    const eduId = `signing-keys:${userId}:${streamId}`;
    await this.bus.publish(this.topology.outboundEdu.subject, { eduId, eduType: 'm.signing_key_update', content, destinations, createdAt: Date.now() }, { messageId: eduId });
  }
}
