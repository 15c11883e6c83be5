// End-to-end encryption, the homeserver side: users' devices with their identity keys, one-time and
// fallback keys to claim, cross-signing keys, and a per-user device-list stream id that every change
// of a user's devices or keys moves forward (federation's `stream_id`, `/keys/changes`). No private key
// material: only what clients publish. Key objects are kept as the client sent them.

export type KeyObject = Record<string, unknown>;

export interface DeviceRecord {
  userId: string;
  deviceId: string;
  displayName: string | null;
  /** The signed device keys (`/keys/upload`'s `device_keys`), null until the device uploads them. */
  keys: KeyObject | null;
  createdTs: number;
}

export interface ClaimedKey {
  /** `<algorithm>:<key id>`. */
  keyId: string;
  key: unknown;
  /** True when no one-time key was left and the device's fallback key was handed out instead. */
  fallback: boolean;
}

export interface DeviceKeyRepository {
  /**
   * Creates the device when missing, or renames it when `displayName` is given and differs. The user's
   * device-list stream id moves on creation and on a rename (`changed`).
   */
  putDevice(userId: string, deviceId: string, displayName?: string | null, now?: number): Promise<{ created: boolean; changed: boolean; streamId: number }>;
  getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null>;
  /** The user's devices, ordered by device ID. */
  listDevices(userId: string): Promise<DeviceRecord[]>;
  /** Deletes the device with its one-time and fallback keys; the stream id moves when there was one. */
  deleteDevice(userId: string, deviceId: string): Promise<{ deleted: boolean; streamId: number }>;
  /** Sets the device's keys (the device must exist: false otherwise); the stream id moves when they changed. */
  setDeviceKeys(userId: string, deviceId: string, keys: KeyObject): Promise<{ found: boolean; changed: boolean; streamId: number }>;
  /**
   * Adds one-time keys (`<algorithm>:<key id>` → key). A key ID already held with the same key is a no-op (a
   * retried upload); with a different key it is not stored and is returned in `conflicts`. One-time keys
   * already claimed are gone and may be uploaded again.
   */
  addOneTimeKeys(userId: string, deviceId: string, keys: Record<string, unknown>): Promise<{ conflicts: string[] }>;
  /** Unclaimed one-time keys per algorithm. */
  countOneTimeKeys(userId: string, deviceId: string): Promise<Record<string, number>>;
  /** Sets the fallback key of each algorithm given (`<algorithm>:<key id>` → key), unused, replacing the previous one. */
  setFallbackKeys(userId: string, deviceId: string, keys: Record<string, unknown>): Promise<void>;
  /** Algorithms whose fallback key has not been handed out yet. */
  unusedFallbackKeyAlgorithms(userId: string, deviceId: string): Promise<string[]>;
  /**
   * Hands out one one-time key of `algorithm` and removes it (atomically: concurrent claims get different
   * keys); when none is left, the fallback key of that algorithm, marked used but kept. Null when neither.
   */
  claimKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | null>;
  /** Sets the user's cross-signing key of `usage` (master, self_signing, user_signing); the stream id moves. */
  setCrossSigningKey(userId: string, usage: string, key: KeyObject): Promise<{ streamId: number }>;
  /** The user's cross-signing keys by usage. */
  crossSigningKeys(userId: string): Promise<Record<string, KeyObject>>;
  /**
   * Keeps `signer`'s signature (by their user-signing key `keyId`) of `target`'s master key: seen only by the
   * signer (`/keys/query`); `target` may be on another server.
   */
  addUserSigningSignature(signer: string, target: string, keyId: string, signature: string): Promise<void>;
  /** `signer`'s signatures of `target`'s master key: key ID → signature. */
  userSigningSignatures(signer: string, target: string): Promise<Record<string, string>>;
  /**
   * Finishes changes a crash cut short between the device (or cross-signing key) write and the stream move
   * with its change-log entry, and between another server's user's device list written (`replaceRemoteList` with
   * `logChange`) and its `remote` change logged, for changes marked before `markedBefore`; returns how many. Stores
   * that write them in one transaction have none.
   */
  finishPendingChanges(markedBefore?: number): Promise<number>;
  /** The user's device-list stream id: 0 until the first change. */
  deviceListStreamId(userId: string): Promise<number>;
}

/** The algorithm part of a `<algorithm>:<key id>` key ID. */
export function keyAlgorithm(keyId: string): string {
  const colon = keyId.indexOf(':');
  return colon < 0 ? keyId : keyId.slice(0, colon);
}
