// Other servers' users' device lists, cached for the users who share a room with a user of ours (the
// others' EDUs are not kept). Inbound `m.device_list_update` / `m.signing_key_update` move the cache
// (device-list-updates.ts says how); a gap marks the list stale and resyncs it with
// `GET /user/devices/{userId}`; a list left stale (the origin was down) is resynced on start and every
// few minutes. `/keys/query` is answered from a list that is not stale. Every refusal and failed resync
// is an audit record (`method: EDU` with the EDU type as path, or `GET`; a short reason, the rest in
// `details.detail`) and a log line.
import type { InboundEdu } from '@fedgate/bus';
import type { FederationHttpClient } from '@fedgate/platform';
import { domainOf } from '@fedgate/room-state';
import type { KeyQueryAnswer, RemoteDeviceList, Store } from '@fedgate/store';
import { RoomView } from '../rooms/room-view';
import { applyDeviceListUpdate, applySigningKeyUpdate, listFromResync, type UpdateOutcome } from './device-list-updates';

const RESYNC_TIMEOUT_MS = 10_000;
/** Attempts at a compare-and-set write before giving the message back to the bus (redelivered later). */
const WRITE_ATTEMPTS = 5;
/**
 * A list marked stale this recently is not resynced again for another EDU (a server sending gap after gap
 * would make us ask it for every one); the periodic resync and `/keys/query` still do.
 */
export const RESYNC_QUIET_MS = 30_000;

export interface RemoteDeviceListOptions {
  now?: () => number;
  /** Whether the user shares a room with a user of ours; default: from the rooms' current state. */
  isTracked?: (userId: string) => Promise<boolean>;
  /** Told of every refusal and failure, with its reason (the caller logs it). */
  onRefused?: (details: { origin: string; userId?: unknown; what: string; reason: string }) => void;
}

export class RemoteDeviceLists {
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly federation: Pick<FederationHttpClient, 'getJson'>,
    private readonly serverName: string,
    private readonly options: RemoteDeviceListOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Handles `m.device_list_update` and `m.signing_key_update`; true when the EDU was one of those. */
  async handle(edu: InboundEdu): Promise<boolean> {
    if (edu.eduType === 'm.device_list_update') await this.update(edu, applyDeviceListUpdate);
    else if (edu.eduType === 'm.signing_key_update') await this.update(edu, applySigningKeyUpdate);
    else return false;
    return true;
  }

  /** The cached list when it is current (not stale), else null. */
  async fresh(userId: string): Promise<RemoteDeviceList | null> {
    const list = await this.store.deviceLists.remoteList(userId);
    return list && !list.stale ? list : null;
  }

  /** Whether the user shares a room with a user of this server (only then is their list kept current). */
  async tracked(userId: string): Promise<boolean> {
    if (this.options.isTracked) return this.options.isTracked(userId);
    const view = new RoomView(this.store);
    for (const roomId of await this.store.rooms.roomsOfServer(domainOf(userId))) {
      const members = await view.joinedMembers(roomId);
      if (members.includes(userId) && members.some((m) => domainOf(m) === this.serverName)) return true;
    }
    return false;
  }

  /** Asks the user's server for the whole list and caches it; null (and the list left stale) when that fails. */
  async resync(userId: string, timeoutMs = RESYNC_TIMEOUT_MS): Promise<RemoteDeviceList | null> {
    const origin = domainOf(userId);
    let body: unknown;
    try {
      ({ body } = await this.federation.getJson(origin, `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`, { timeoutMs }));
    } catch (error) {
      await this.refused(origin, userId, 'GET', `resync_failed: ${(error as Error).message}`, 'error');
      await this.markStale(userId);
      return null;
    }
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const cached = await this.store.deviceLists.remoteList(userId);
      const result = listFromResync(userId, body, cached, this.now());
      if ('reason' in result) {
        await this.refused(origin, userId, 'GET', result.reason);
        await this.markStale(userId);
        return null;
      }
      if (result.leftOut.length > 0) await this.refused(origin, userId, 'GET', `devices_left_out: ${result.leftOut.slice(0, 3).join('; ')}`);
      if (await this.store.deviceLists.replaceRemoteList(result.list, cached && { streamId: cached.streamId, stale: cached.stale }, { logChange: true })) return result.list;
    }
    throw new Error(`device list of ${userId} kept changing under the resync`);
  }

  /**
   * After the user left a room: once they share none with a user of ours, their server stops telling us of
   * their changes, so their list is no longer served (marked stale; resynced if they share a room again).
   */
  async untrackIfAlone(userId: string): Promise<void> {
    if (domainOf(userId) === this.serverName) return;
    const cached = await this.store.deviceLists.remoteList(userId);
    if (!cached || cached.stale || (await this.tracked(userId))) return;
    await this.markStale(userId);
  }

  /** Resyncs lists left stale (after a failed resync, or before a restart); returns how many came back. */
  async resyncStale(limit = 100): Promise<number> {
    let done = 0;
    for (const userId of await this.store.deviceLists.staleRemoteUsers(limit)) if (await this.resync(userId)) done++;
    return done;
  }

  /**
   * Fills `into` from the cache for the users in `wanted` whose list is current; users tracked but not
   * cached are resynced first (at most `resyncBudget` of them). Returns the users still to ask their server.
   */
  async answerFromCache(wanted: Record<string, string[]>, into: KeyQueryAnswer, resyncBudget = 10, timeoutMs = RESYNC_TIMEOUT_MS): Promise<Record<string, string[]>> {
    const left: Record<string, string[]> = {};
    let budget = resyncBudget;
    // Whether a user shares a room reads room state: bounded per request too.
    let checks = resyncBudget * 2;
    for (const [userId, deviceIds] of Object.entries(wanted)) {
      let list = await this.fresh(userId);
      if (!list && budget > 0 && checks-- > 0 && (await this.tracked(userId))) {
        budget--;
        list = await this.resync(userId, timeoutMs);
      }
      if (!list) {
        left[userId] = deviceIds;
        continue;
      }
      into.device_keys[userId] = {};
      for (const [deviceId, keys] of Object.entries(list.devices)) {
        if (Object.keys(keys).length === 0 || (deviceIds.length > 0 && !deviceIds.includes(deviceId))) continue;
        into.device_keys[userId][deviceId] = keys;
      }
      if (list.masterKey) into.master_keys[userId] = list.masterKey;
      if (list.selfSigningKey) into.self_signing_keys[userId] = list.selfSigningKey;
    }
    return left;
  }

  private async update(edu: InboundEdu, apply: (cached: RemoteDeviceList | null, content: unknown, origin: string, now: number) => UpdateOutcome): Promise<void> {
    const userId = (edu.content as { user_id?: unknown }).user_id;
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const cached = await this.store.deviceLists.remoteList(typeof userId === 'string' ? userId : '');
      const outcome = apply(cached, edu.content, edu.origin, this.now());
      if (outcome.kind === 'refused') return this.refused(edu.origin, userId, edu.eduType, outcome.reason);
      if (outcome.kind === 'resync') {
        const id = userId as string;
        if (!cached && !(await this.tracked(id))) return this.refused(edu.origin, id, edu.eduType, `not_tracked: no room shared with a user of ${this.serverName}`);
        if (cached?.stale && this.now() - cached.updatedTs < RESYNC_QUIET_MS) {
          return this.refused(edu.origin, id, edu.eduType, 'resync_pending: the list was marked stale moments ago; the periodic resync fetches it');
        }
        await this.markStale(id);
        await this.resync(id);
        return;
      }
      if (await this.store.deviceLists.replaceRemoteList(outcome.list, cached && { streamId: cached.streamId, stale: cached.stale }, { logChange: true })) return;
    }
    throw new Error(`device list of ${String(userId)} kept changing under the update`);
  }

  private async markStale(userId: string): Promise<void> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const cached = await this.store.deviceLists.remoteList(userId);
      // Marked now (again, when stale already): the time of the last attempt, which RESYNC_QUIET_MS counts from.
      const stale: RemoteDeviceList = cached ? { ...cached, stale: true, updatedTs: this.now() } : { userId, streamId: 0, devices: {}, masterKey: null, selfSigningKey: null, stale: true, updatedTs: this.now() };
      if (await this.store.deviceLists.replaceRemoteList(stale, cached && { streamId: cached.streamId, stale: cached.stale })) return;
    }
  }

  /** `what`: the EDU type, or GET for a resync. */
  private async refused(origin: string, userId: unknown, what: string, reason: string, outcome: 'rejected' | 'error' = 'rejected'): Promise<void> {
    this.options.onRefused?.({ origin, userId, what, reason });
    const colon = reason.indexOf(': ');
    const inbound = what !== 'GET';
    await this.store.audit.append({
      direction: inbound ? 'in' : 'out',
      origin: inbound ? origin : this.serverName,
      destination: inbound ? this.serverName : origin,
      method: inbound ? 'EDU' : 'GET',
      path: inbound ? what : `/_matrix/federation/v1/user/devices/${String(userId)}`,
      ts: this.now(),
      durationMs: 0,
      status: 0,
      outcome,
      reason: colon < 0 ? reason : reason.slice(0, colon),
      details: { user_id: typeof userId === 'string' ? userId.slice(0, 255) : null, ...(colon < 0 ? {} : { detail: reason.slice(colon + 2, colon + 514) }) },
    });
  }
}
