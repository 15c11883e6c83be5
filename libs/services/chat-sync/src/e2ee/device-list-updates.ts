// The rules for other servers' device lists, without I/O: how an `m.device_list_update` or
// `m.signing_key_update` EDU moves a cached list, when a gap means a resync, and what a resync answer
// (`GET /user/devices/{userId}`) must look like to be kept. A lying origin gets a reason, never a change:
// a user of another server, a stream id that does not move forward, keys that do not verify, a list too long.
import { checkCrossSigningKey, checkDeviceKeys, DeviceKeyError, isUserOf, type PublishedKey } from '@fedgate/protocol';
import type { KeyObject, RemoteDeviceList } from '@fedgate/store';
import { isObject } from '@fedgate/room-state';

/** Devices kept for one remote user: more is refused (a client encrypts for each of them). */
export const MAX_REMOTE_DEVICES_PER_USER = 1000;

export type UpdateOutcome =
  | { kind: 'applied'; list: RemoteDeviceList }
  /** A prev_id this server never saw (or the cache is stale): ask the origin for the whole list. */
  | { kind: 'resync' }
  | { kind: 'refused'; reason: string };

function keyError(error: unknown): string {
  if (error instanceof DeviceKeyError) return error.message;
  throw error;
}

/** `m.device_list_update` from `origin` against the cached list of its user (null: none cached). */
export function applyDeviceListUpdate(cached: RemoteDeviceList | null, content: unknown, origin: string, now: number): UpdateOutcome {
  if (!isObject(content) || typeof content.user_id !== 'string' || typeof content.device_id !== 'string') return { kind: 'refused', reason: 'malformed' };
  const { user_id: userId, device_id: deviceId, stream_id: streamId } = content;
  if (!isUserOf(userId, origin)) return { kind: 'refused', reason: 'not_origin_user' };
  if (!Number.isSafeInteger(streamId) || (streamId as number) < 0) return { kind: 'refused', reason: 'malformed: stream_id' };
  const prevIds = content.prev_id ?? [];
  if (!Array.isArray(prevIds) || !prevIds.every((p) => Number.isSafeInteger(p))) return { kind: 'refused', reason: 'malformed: prev_id' };
  if (content.keys !== undefined && !content.deleted) {
    try {
      checkDeviceKeys(content.keys, userId, deviceId);
    } catch (error) {
      return { kind: 'refused', reason: `keys_do_not_verify: ${keyError(error)}` };
    }
  }
  if (cached === null || cached.stale) return { kind: 'resync' };
  if ((streamId as number) <= cached.streamId) return { kind: 'refused', reason: `stream_id_not_newer: ${streamId as number} after ${cached.streamId}` };
  // Every update named as preceding this one must be one the cache already reflects.
  if ((prevIds as number[]).some((p) => p > cached.streamId)) return { kind: 'resync' };
  const devices = { ...cached.devices };
  if (content.deleted === true) delete devices[deviceId];
  else devices[deviceId] = (content.keys as KeyObject | undefined) ?? devices[deviceId] ?? {};
  if (Object.keys(devices).length > MAX_REMOTE_DEVICES_PER_USER) return { kind: 'refused', reason: `too_many_devices: more than ${MAX_REMOTE_DEVICES_PER_USER}` };
  return { kind: 'applied', list: { ...cached, streamId: streamId as number, devices, updatedTs: now } };
}

/** `m.signing_key_update` from `origin`: new master and/or self-signing keys, checked against each other. */
export function applySigningKeyUpdate(cached: RemoteDeviceList | null, content: unknown, origin: string, now: number): UpdateOutcome {
  if (!isObject(content) || typeof content.user_id !== 'string') return { kind: 'refused', reason: 'malformed' };
  const userId = content.user_id;
  if (!isUserOf(userId, origin)) return { kind: 'refused', reason: 'not_origin_user' };
  if (cached === null || cached.stale) return { kind: 'resync' };
  const keys = checkedCrossSigning(userId, content.master_key ?? cached.masterKey ?? undefined, content.self_signing_key ?? undefined);
  if ('reason' in keys) return { kind: 'refused', reason: keys.reason };
  return {
    kind: 'applied',
    list: { ...cached, masterKey: (keys.master ?? cached.masterKey) as KeyObject | null, selfSigningKey: (keys.selfSigning ?? cached.selfSigningKey) as KeyObject | null, updatedTs: now },
  };
}

function checkedCrossSigning(userId: string, master: unknown, selfSigning: unknown): { master?: unknown; selfSigning?: unknown } | { reason: string } {
  let masterKey: PublishedKey | undefined;
  try {
    if (master !== undefined) masterKey = checkCrossSigningKey(master, userId, 'master', undefined);
  } catch (error) {
    return { reason: `master_key_does_not_verify: ${keyError(error)}` };
  }
  try {
    if (selfSigning !== undefined) checkCrossSigningKey(selfSigning, userId, 'self_signing', masterKey);
  } catch (error) {
    return { reason: `self_signing_key_does_not_verify: ${keyError(error)}` };
  }
  return { master, selfSigning };
}

/**
 * A `/user/devices/{userId}` answer as the cached list, or why it is refused whole. A device whose keys
 * do not verify is left out (named in `leftOut`); the list is otherwise the origin's word.
 */
export function listFromResync(userId: string, body: unknown, cached: RemoteDeviceList | null, now: number): { list: RemoteDeviceList; leftOut: string[] } | { reason: string } {
  if (!isObject(body) || body.user_id !== userId) return { reason: 'resync_answer_for_another_user' };
  const streamId = body.stream_id;
  if (!Number.isSafeInteger(streamId) || (streamId as number) < 0) return { reason: 'malformed: stream_id' };
  if (cached && (streamId as number) < cached.streamId) return { reason: `stream_id_went_backwards: ${streamId as number} after ${cached.streamId}` };
  if (!Array.isArray(body.devices)) return { reason: 'malformed: devices' };
  if (body.devices.length > MAX_REMOTE_DEVICES_PER_USER) return { reason: `too_many_devices: ${body.devices.length} (at most ${MAX_REMOTE_DEVICES_PER_USER})` };
  const devices: Record<string, KeyObject> = {};
  const leftOut: string[] = [];
  for (const device of body.devices) {
    if (!isObject(device) || typeof device.device_id !== 'string') {
      leftOut.push('malformed device');
      continue;
    }
    if (device.keys === undefined) {
      devices[device.device_id] = {};
      continue;
    }
    try {
      checkDeviceKeys(device.keys, userId, device.device_id);
      devices[device.device_id] = device.keys as KeyObject;
    } catch (error) {
      leftOut.push(`${device.device_id}: ${keyError(error)}`);
    }
  }
  // Synapse answers `null` for cross-signing keys a user has not set up.
  const keys = checkedCrossSigning(userId, body.master_key ?? undefined, body.self_signing_key ?? undefined);
  if ('reason' in keys) return { reason: keys.reason };
  return {
    list: { userId, streamId: streamId as number, devices, masterKey: (keys.master as KeyObject | undefined) ?? null, selfSigningKey: (keys.selfSigning as KeyObject | undefined) ?? null, stale: false, updatedTs: now },
    leftOut,
  };
}
