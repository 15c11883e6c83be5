// The answers to key queries and claims about this server's users, the same for client-server
// (`/keys/query`, `/keys/claim`) and federation (`/user/keys/query`, `/user/keys/claim`, `/user/devices`).
import type { DeviceKeyRepository, DeviceRecord, KeyObject } from '../ports/device-keys';

export interface KeyQueryOptions {
  /** Device display names in `unsigned` (client-server only: federation does not get them). */
  displayNames: boolean;
  /** The user asking: only they see their own user-signing key. */
  requester?: string;
}

export interface KeyQueryAnswer {
  device_keys: Record<string, Record<string, KeyObject>>;
  master_keys: Record<string, KeyObject>;
  self_signing_keys: Record<string, KeyObject>;
  user_signing_keys: Record<string, KeyObject>;
}

const withDisplayName = (device: DeviceRecord, keys: KeyObject, displayNames: boolean): KeyObject =>
  displayNames && device.displayName !== null ? { ...keys, unsigned: { ...(keys.unsigned as object | undefined), device_display_name: device.displayName } } : keys;

/** `wanted`: user → device IDs (empty: all the user's devices). Devices that uploaded no keys are left out. */
export async function queryLocalKeys(repo: DeviceKeyRepository, wanted: Record<string, string[]>, options: KeyQueryOptions): Promise<KeyQueryAnswer> {
  const answer: KeyQueryAnswer = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} };
  for (const [userId, deviceIds] of Object.entries(wanted)) {
    const devices = await repo.listDevices(userId);
    const chosen = deviceIds.length === 0 ? devices : devices.filter((d) => deviceIds.includes(d.deviceId));
    answer.device_keys[userId] = {};
    for (const device of chosen) if (device.keys) answer.device_keys[userId][device.deviceId] = withDisplayName(device, device.keys, options.displayNames);
    const crossSigning = await repo.crossSigningKeys(userId);
    if (crossSigning.master) answer.master_keys[userId] = crossSigning.master;
    if (crossSigning.self_signing) answer.self_signing_keys[userId] = crossSigning.self_signing;
    if (crossSigning.user_signing && options.requester === userId) answer.user_signing_keys[userId] = crossSigning.user_signing;
  }
  return answer;
}

/** `wanted`: user → device → algorithm. Each device gets one key (a one-time key, else its fallback key) or nothing. */
export async function claimLocalKeys(repo: DeviceKeyRepository, wanted: Record<string, Record<string, string>>): Promise<Record<string, Record<string, Record<string, unknown>>>> {
  const claimed: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [userId, devices] of Object.entries(wanted)) {
    for (const [deviceId, algorithm] of Object.entries(devices)) {
      const key = await repo.claimKey(userId, deviceId, algorithm);
      if (!key) continue;
      (claimed[userId] ??= {})[deviceId] = { [key.keyId]: key.key };
    }
  }
  return claimed;
}

/** Federation's `GET /user/devices/{userId}`: the user's devices with keys, the stream id, cross-signing keys. */
export async function localUserDevices(repo: DeviceKeyRepository, userId: string): Promise<Record<string, unknown>> {
  // The stream id is read first: a change landing between the reads makes the answer look older, never newer.
  const streamId = await repo.deviceListStreamId(userId);
  const devices = await repo.listDevices(userId);
  const crossSigning = await repo.crossSigningKeys(userId);
  return {
    user_id: userId,
    stream_id: streamId,
    devices: devices.filter((d) => d.keys).map((d) => ({ device_id: d.deviceId, keys: d.keys })),
    ...(crossSigning.master ? { master_key: crossSigning.master } : {}),
    ...(crossSigning.self_signing ? { self_signing_key: crossSigning.self_signing } : {}),
  };
}
