// Fans out the device-list change log: each entry not yet announced goes, as it is now, to the servers
// sharing a room with a local user (`m.device_list_update` / `m.signing_key_update`, local changes
// only) and to the application services with MSC3202 whose users share a room with the user (`changed`,
// or `left` after a membership change that ended the last shared room); then it is marked announced.
// The entry was written with the change itself, so a crash before this runs (or during it) loses
// nothing: the next drain (after the next change, on start, every minute) publishes it, under the same
// bus message IDs.
import { Inject, Injectable, Optional } from '@nestjs/common';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type ServerIdentity, type Store } from '@fedgate/platform';
import type { DeviceListChangeEntry, KeyObject } from '@fedgate/store';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';
import { DeviceListAnnouncer } from './device-list-announcer';
import { SharedRooms } from './shared-rooms';

const BATCH = 100;

@Injectable()
export class DeviceListOutbox {
  private running: Promise<void> | null = null;
  private again = false;
  private readonly announcer: DeviceListAnnouncer;
  sharedRooms: Pick<SharedRooms, 'sharesRoomWith'>;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    @Optional() @Inject(SERVICE_LOGGER) private readonly logger: Logger | null = null,
  ) {
    this.announcer = new DeviceListAnnouncer(store, bus, topology, identity);
    this.sharedRooms = new SharedRooms(store, identity.serverName);
  }

  /** Publishes everything not announced yet; resolves when the log is drained (one drain at a time per process). */
  async drain(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          for (let batch = await this.store.deviceLists.unannounced(BATCH); batch.length > 0; batch = await this.store.deviceLists.unannounced(BATCH)) {
            for (const entry of batch) {
              await this.publish(entry);
              await this.store.deviceLists.markAnnounced(entry.position);
            }
          }
        } while (this.again);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /** drain(), a failure logged rather than thrown: what is left is published by the next drain. */
  async drainLogged(): Promise<void> {
    try {
      await this.drain();
    } catch (err) {
      this.logger?.warn({ err }, 'device-list changes not fanned out yet; the next drain retries');
    }
  }

  private async publish(entry: DeviceListChangeEntry): Promise<void> {
    const { userId, streamId } = entry;
    if (entry.kind === 'device' && entry.deviceId !== null && streamId !== null) {
      const device = await this.store.deviceKeys.getDevice(userId, entry.deviceId);
      await this.announcer.announce({ userId, deviceId: entry.deviceId, streamId, ...(device ? { keys: device.keys } : { deleted: true }) });
    } else if (entry.kind === 'signing' && streamId !== null) {
      const keys = await this.store.deviceKeys.crossSigningKeys(userId);
      await this.announcer.announceSigningKeys(userId, streamId, { master: keys.master as KeyObject | undefined, self_signing: keys.self_signing as KeyObject | undefined });
    }
    for (const service of this.registry.services) {
      if (!service.registration.msc3202 || service.registration.url === null) continue;
      const shares = service.isInterestedInUser(userId) || (await this.sharedRooms.sharesRoomWith(userId, (m) => service.isInterestedInUser(m)));
      if (!shares && entry.kind !== 'membership') continue;
      const id = `device-list:${entry.position}`;
      await this.bus.publish(
        this.topology.appservice.subjectFor(service.id),
        { appserviceId: service.id, roomId: '', eventId: id, event: shares ? { user_id: userId } : { user_id: userId, left: true }, kind: 'device_list' },
        { messageId: `${service.id}:${id}` },
      );
    }
  }
}
