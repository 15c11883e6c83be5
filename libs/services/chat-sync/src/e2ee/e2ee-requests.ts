// Parsing of the end-to-end encryption request bodies and parameters chat-sync serves.
import { DeviceKeyError, parseUserId } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { isObject } from '@fedgate/room-state';

export const MAX_DEVICE_ID_LENGTH = 255;
export const MAX_DEVICE_DISPLAY_NAME_LENGTH = 256;
/** Users in one `/keys/query` or `/keys/claim`. */
export const MAX_KEY_REQUEST_USERS = 1000;
/** Devices named in one `/keys/query` or `/keys/claim`, all users together. */
export const MAX_KEY_REQUEST_DEVICES = 10_000;

export function assertDeviceId(deviceId: unknown): string {
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > MAX_DEVICE_ID_LENGTH || /[\u0000-\u001f\u007f]/.test(deviceId)) {
    throw MatrixError.invalidParam(`device ID must be 1 to ${MAX_DEVICE_ID_LENGTH} printable characters`);
  }
  return deviceId;
}

/**
 * The device an application service acts as (MSC3202 device masquerading): `device_id=` (or its unstable
 * name) in the query string.
 */
export function maskedDeviceId(query: Record<string, unknown> | undefined): string {
  const value = query?.device_id ?? query?.['org.matrix.msc3202.device_id'];
  if (value === undefined) throw MatrixError.missingParam('To upload keys as an application service user, pass device_id= with the device created by PUT /devices/{deviceId}');
  return assertDeviceId(value);
}

/** A `/keys/changes` token: `dl<position>` in the device-list change log (`dl0`: from the start). */
export function parseDeviceListToken(value: unknown, name: string): number {
  const match = typeof value === 'string' ? /^dl(\d{1,15})$/.exec(value) : null;
  if (!match) throw value === undefined ? MatrixError.missingParam(`${name} is required`) : MatrixError.invalidParam(`${name} must be a device-list token (dl<number>)`);
  return Number(match[1]);
}

export const deviceListToken = (position: number): string => `dl${position}`;

export function parseDisplayName(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  if (!isObject(body)) throw MatrixError.badJson('Content must be a JSON object');
  const name = body.display_name;
  if (name === undefined || name === null) return undefined;
  if (typeof name !== 'string' || name.length > MAX_DEVICE_DISPLAY_NAME_LENGTH) throw MatrixError.badJson(`display_name must be a string of at most ${MAX_DEVICE_DISPLAY_NAME_LENGTH} characters`);
  return name;
}

/** A protocol-level key check failure as the Matrix error a client gets. */
export function keyErrorToMatrix(error: unknown): never {
  if (error instanceof DeviceKeyError) throw new MatrixError(error.errcode === 'M_TOO_LARGE' ? 413 : 400, error.errcode, error.message);
  throw error;
}

function checkUser(userId: string): string {
  try {
    return parseUserId(userId, { allowHistorical: true }).serverName;
  } catch {
    throw MatrixError.invalidParam(`${JSON.stringify(userId.slice(0, 64))} is not a user ID`);
  }
}

function countBounded(users: number, devices: number): void {
  if (users > MAX_KEY_REQUEST_USERS) throw MatrixError.tooLarge(`At most ${MAX_KEY_REQUEST_USERS} users per request`);
  if (devices > MAX_KEY_REQUEST_DEVICES) throw MatrixError.tooLarge(`At most ${MAX_KEY_REQUEST_DEVICES} devices per request`);
}

/** `/keys/query`'s `device_keys`: user → device IDs (empty: all), grouped by the users' servers. */
export function parseKeyQuery(body: unknown): Map<string, Record<string, string[]>> {
  if (!isObject(body) || !isObject(body.device_keys)) throw MatrixError.badJson('device_keys must be an object of user ID to device IDs');
  const byServer = new Map<string, Record<string, string[]>>();
  let devices = 0;
  const entries = Object.entries(body.device_keys);
  for (const [userId, deviceIds] of entries) {
    const server = checkUser(userId);
    if (!Array.isArray(deviceIds) || !deviceIds.every((d) => typeof d === 'string')) throw MatrixError.badJson(`device_keys[${JSON.stringify(userId)}] must be a list of device IDs`);
    devices += deviceIds.length;
    let group = byServer.get(server);
    if (!group) byServer.set(server, (group = {}));
    group[userId] = deviceIds as string[];
  }
  countBounded(entries.length, devices);
  return byServer;
}

/** `/keys/claim`'s `one_time_keys`: user → device → algorithm, grouped by the users' servers. */
export function parseKeyClaim(body: unknown): Map<string, Record<string, Record<string, string>>> {
  if (!isObject(body) || !isObject(body.one_time_keys)) throw MatrixError.badJson('one_time_keys must be an object of user ID to device ID to algorithm');
  const byServer = new Map<string, Record<string, Record<string, string>>>();
  let devices = 0;
  const entries = Object.entries(body.one_time_keys);
  for (const [userId, wanted] of entries) {
    const server = checkUser(userId);
    if (!isObject(wanted) || !Object.values(wanted).every((a) => typeof a === 'string')) throw MatrixError.badJson(`one_time_keys[${JSON.stringify(userId)}] must map device IDs to algorithms`);
    devices += Object.keys(wanted).length;
    let group = byServer.get(server);
    if (!group) byServer.set(server, (group = {}));
    group[userId] = wanted as Record<string, string>;
  }
  countBounded(entries.length, devices);
  return byServer;
}
