// Device lists beyond this server's own devices: one log of every device-list change (local and remote)
// that `/keys/changes` and the application services' `device_lists` read, which is also the outbox of
// the `m.device_list_update` / `m.signing_key_update` EDUs for local changes (written with the change,
// marked announced once published, so a crash between the two loses no EDU); and the cache of other
// servers' users' device lists, kept current by their EDUs and resyncs.
import type { KeyObject } from './device-keys';

export type DeviceListChangeKind = 'device' | 'signing' | 'remote';

export interface DeviceListChangeEntry {
  /** Position in the log: strictly increasing, shared by all users. */
  position: number;
  userId: string;
  kind: DeviceListChangeKind;
  /** Local device changes: the device changed. */
  deviceId: string | null;
  /** Local changes: the user's device-list stream id the change moved to. */
  streamId: number | null;
}

export interface RemoteDeviceList {
  userId: string;
  /** The owning server's stream id this list is current at. */
  streamId: number;
  /** Device ID → its signed device keys (`{}` for a device announced without keys). */
  devices: Record<string, KeyObject>;
  masterKey: KeyObject | null;
  selfSigningKey: KeyObject | null;
  /** A gap was seen (or a resync failed): serve nothing from it until a resync succeeds. */
  stale: boolean;
  updatedTs: number;
}

export interface DeviceListRepository {
  /** Appends a change of another server's user (the cache moved): for `/keys/changes` and the services. */
  recordRemoteChange(userId: string): Promise<number>;
  /** Log entries after `position`, oldest first. */
  changesSince(position: number, limit: number): Promise<DeviceListChangeEntry[]>;
  /** The newest position (0 when the log is empty). */
  latestPosition(): Promise<number>;
  /** Local changes whose EDU has not been published yet, oldest first. */
  unannounced(limit: number): Promise<DeviceListChangeEntry[]>;
  markAnnounced(position: number): Promise<void>;

  remoteList(userId: string): Promise<RemoteDeviceList | null>;
  /**
   * Writes `list` when the held one is still `expected` (its stream id and staleness; null: none held).
   * False when another writer got there first: read again and decide again.
   */
  replaceRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null): Promise<boolean>;
  /** Users whose cached list is stale, oldest update first. */
  staleRemoteUsers(limit: number): Promise<string[]>;
}
