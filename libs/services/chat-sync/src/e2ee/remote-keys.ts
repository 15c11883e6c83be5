// Keys of users on other servers, asked of their servers over federation (`/user/keys/query`,
// `/user/keys/claim`) while the client waits. What a server answers is kept only where it speaks for
// its own users and the devices asked about, and only device keys self-signed by the device: a lying
// server cannot plant keys for anyone else. A server that fails or lies is named in `failures`.
// Not cached yet: every query goes to the server.
import { Inject, Injectable } from '@nestjs/common';
import { FEDERATION_CLIENT, type FederationHttpClient } from '@fedgate/platform';
import { checkCrossSigningKey, checkDeviceKeys, DeviceKeyError } from '@fedgate/protocol';
import type { KeyQueryAnswer } from '@fedgate/store';
import { isObject } from '@fedgate/room-state';

/** What `/keys/query` and `/keys/claim` wait for a remote server at most (the client's `timeout` may lower it). */
export const MAX_REMOTE_KEY_TIMEOUT_MS = 10_000;

export interface RemoteFailure {
  status: number;
  message: string;
}

export function remoteTimeout(body: unknown): number {
  const asked = isObject(body) ? body.timeout : undefined;
  return typeof asked === 'number' && Number.isFinite(asked) && asked > 0 ? Math.min(asked, MAX_REMOTE_KEY_TIMEOUT_MS) : MAX_REMOTE_KEY_TIMEOUT_MS;
}

/** The parts of a remote `/user/keys/query` answer kept for `wanted` (users of that server only): devices asked, self-signed. */
export function keepRemoteKeys(wanted: Record<string, string[]>, body: unknown, into: KeyQueryAnswer): string[] {
  const refused: string[] = [];
  const answer = isObject(body) ? body : {};
  const deviceKeys = isObject(answer.device_keys) ? answer.device_keys : {};
  for (const [userId, asked] of Object.entries(wanted)) {
    const byDevice = deviceKeys[userId];
    into.device_keys[userId] = {};
    if (!isObject(byDevice)) continue;
    for (const [deviceId, keys] of Object.entries(byDevice)) {
      if (asked.length > 0 && !asked.includes(deviceId)) continue;
      try {
        checkDeviceKeys(keys, userId, deviceId);
        into.device_keys[userId][deviceId] = keys as Record<string, unknown>;
      } catch (error) {
        if (!(error instanceof DeviceKeyError)) throw error;
        refused.push(`${userId} ${deviceId}: ${error.message}`);
      }
    }
    for (const [field, usage] of [['master_keys', 'master'], ['self_signing_keys', 'self_signing']] as const) {
      const key = isObject(answer[field]) ? (answer[field] as Record<string, unknown>)[userId] : undefined;
      if (key === undefined) continue;
      try {
        const master = usage === 'self_signing' && into.master_keys[userId] ? checkCrossSigningKey(into.master_keys[userId], userId, 'master', undefined) : undefined;
        checkCrossSigningKey(key, userId, usage, master);
        into[field][userId] = key as Record<string, unknown>;
      } catch (error) {
        if (!(error instanceof DeviceKeyError)) throw error;
        refused.push(`${userId} ${usage}: ${error.message}`);
      }
    }
  }
  return refused;
}

/** The parts of a remote `/user/keys/claim` answer for the users and devices asked: one key per device. */
export function keepClaimedKeys(wanted: Record<string, Record<string, string>>, body: unknown): Record<string, Record<string, Record<string, unknown>>> {
  const kept: Record<string, Record<string, Record<string, unknown>>> = {};
  const claimed = isObject(body) && isObject(body.one_time_keys) ? body.one_time_keys : {};
  for (const [userId, devices] of Object.entries(wanted)) {
    const byDevice = claimed[userId];
    if (!isObject(byDevice)) continue;
    for (const [deviceId, algorithm] of Object.entries(devices)) {
      const keys = byDevice[deviceId];
      if (!isObject(keys)) continue;
      const entries = Object.entries(keys).filter(([keyId]) => keyId.startsWith(`${algorithm}:`));
      if (entries.length === 0) continue;
      (kept[userId] ??= {})[deviceId] = Object.fromEntries(entries.slice(0, 1));
    }
  }
  return kept;
}

@Injectable()
export class RemoteKeys {
  constructor(@Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient) {}

  async query(server: string, wanted: Record<string, string[]>, timeoutMs: number, into: KeyQueryAnswer): Promise<RemoteFailure | undefined> {
    try {
      const { body } = await this.federation.postJson(server, '/_matrix/federation/v1/user/keys/query', { device_keys: wanted }, { timeoutMs });
      const refused = keepRemoteKeys(wanted, body, into);
      return refused.length > 0 ? { status: 502, message: `${server} answered keys that do not verify: ${refused.slice(0, 3).join('; ')}` } : undefined;
    } catch (error) {
      return { status: 503, message: `could not ask ${server}: ${(error as Error).message}` };
    }
  }

  async claim(server: string, wanted: Record<string, Record<string, string>>, timeoutMs: number): Promise<{ claimed: Record<string, Record<string, Record<string, unknown>>>; failure?: RemoteFailure }> {
    try {
      const { body } = await this.federation.postJson(server, '/_matrix/federation/v1/user/keys/claim', { one_time_keys: wanted }, { timeoutMs });
      return { claimed: keepClaimedKeys(wanted, body) };
    } catch (error) {
      return { claimed: {}, failure: { status: 503, message: `could not ask ${server}: ${(error as Error).message}` } };
    }
  }
}
