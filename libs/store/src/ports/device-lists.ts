// Device lists beyond this server's own devices: one log of every device-list change (local and remote)
// that `/keys/changes` and the application services' `device_lists` read, which is also the outbox of
// the `m.device_list_update` / `m.signing_key_update` EDUs for local changes (written with the change,
// marked announced once published, so a crash between the two loses no EDU); and the cache of other
// servers' users' device lists, kept current by their EDUs and resyncs.
import type { KeyObject } from './device-keys';

/** device, signing: a local user's devices or cross-signing keys; remote: a cached list moved; membership: a user joined or left a room. */
export type DeviceListChangeKind = 'device' | 'signing' | 'remote' | 'membership';

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
  /** Appends a change a local write did not log itself (a cached remote list moved, a membership changed), unannounced. */
  recordChange(userId: string, kind: 'remote' | 'membership'): Promise<number>;
  /** Log entries after `position`, oldest first. */
  changesSince(position: number, limit: number): Promise<DeviceListChangeEntry[]>;
  /** The newest position (0 when the log is empty). */
  latestPosition(): Promise<number>;
  /** Changes not fanned out yet (EDUs for local ones, the services' `device_lists` for all), oldest first. */
  unannounced(limit: number): Promise<DeviceListChangeEntry[]>;
  markAnnounced(position: number): Promise<void>;

  remoteList(userId: string): Promise<RemoteDeviceList | null>;
  /**
   * Writes `list` when the held one is still `expected` (its stream id and staleness; null: none held).
   * False when another writer got there first: read again and decide again. With `logChange`, a written
   * list also appends a `remote` change to the log, with the write (SQLite: one transaction).
   */
  replaceRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null, options?: { logChange?: boolean }): Promise<boolean>;
  /** Users whose cached list is stale, oldest update first. */
  staleRemoteUsers(limit: number): Promise<string[]>;
}
