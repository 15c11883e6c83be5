// Keys of application-service users, client-server side: the AS uploads, queries and claims keys as its
// users (`user_id=`, and `device_id=` for uploads). Keys of this server's users come from the store;
// those of other servers' users come from their cached device lists when current (remote-device-lists.ts),
// else are asked of their servers (remote-keys.ts), each failure in `failures`.
import { Body, Controller, HttpCode, Inject, Post, Query, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { checkCrossSigningKey, checkDeviceKeys, checkUploadedKeys, DEVICE_KEY_LIMITS, deviceKeyOf, type PublishedKey } from '@fedgate/protocol';
import { claimLocalKeys, queryLocalKeys } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { asObject } from '../rooms/room-actions';
import { DeviceListAnnouncer } from './device-list-announcer';
import { RemoteKeys, remoteTimeout } from './remote-keys';
import { RemoteDeviceLists } from './remote-device-lists';
import { keyErrorToMatrix, maskedDeviceId, parseKeyClaim, parseKeyQuery } from './e2ee-requests';


@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class KeysController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly announcer: DeviceListAnnouncer,
    private readonly remote: RemoteKeys,
    private readonly deviceLists: RemoteDeviceLists,
  ) {}

  @Post('keys/upload')
  @HttpCode(200)
  async upload(@CurrentRequester() requester: Requester, @Query() query: Record<string, unknown>, @Body() body: unknown) {
    const userId = requester.userId;
    const deviceId = maskedDeviceId(query);
    const fields = asObject(body);
    const device = await this.store.deviceKeys.getDevice(userId, deviceId);
    if (!device) throw MatrixError.invalidParam(`${userId} has no device ${deviceId}: create it with PUT /devices/${deviceId} first`);
    const fallbackField = fields.fallback_keys ?? fields['org.matrix.msc2732.fallback_keys'];
    let deviceKey = deviceKeyOf(device.keys, deviceId);
    let oneTimeKeys: Record<string, unknown> = {};
    let fallbackKeys: Record<string, unknown> = {};
    try {
      if (fields.device_keys !== undefined) deviceKey = checkDeviceKeys(fields.device_keys, userId, deviceId);
      if (fields.one_time_keys !== undefined) oneTimeKeys = checkUploadedKeys(fields.one_time_keys, 'one_time_keys', DEVICE_KEY_LIMITS.maxOneTimeKeysPerUpload, userId, deviceKey);
      if (fallbackField !== undefined) fallbackKeys = checkUploadedKeys(fallbackField, 'fallback_keys', DEVICE_KEY_LIMITS.maxFallbackKeysPerUpload, userId, deviceKey);
    } catch (error) {
      keyErrorToMatrix(error);
    }
    const uploading = Object.keys(oneTimeKeys).length;
    if (uploading > 0) {
      const held = Object.values(await this.store.deviceKeys.countOneTimeKeys(userId, deviceId)).reduce((a, b) => a + b, 0);
      if (held + uploading > DEVICE_KEY_LIMITS.maxOneTimeKeysHeld) {
        throw MatrixError.tooLarge(`${deviceId} would hold more than ${DEVICE_KEY_LIMITS.maxOneTimeKeysHeld} unclaimed one-time keys`);
      }
    }
    if (fields.device_keys !== undefined) {
      const keys = fields.device_keys as Record<string, unknown>;
      const { changed, streamId } = await this.store.deviceKeys.setDeviceKeys(userId, deviceId, keys);
      if (changed) await this.announcer.announce({ userId, deviceId, streamId, keys });
    }
    if (uploading > 0) {
      const { conflicts } = await this.store.deviceKeys.addOneTimeKeys(userId, deviceId, oneTimeKeys);
      if (conflicts.length > 0) throw MatrixError.invalidParam(`One-time key ${conflicts[0]} already exists with another key`);
    }
    if (Object.keys(fallbackKeys).length > 0) await this.store.deviceKeys.setFallbackKeys(userId, deviceId, fallbackKeys);
    return { one_time_key_counts: { signed_curve25519: 0, ...(await this.store.deviceKeys.countOneTimeKeys(userId, deviceId)) } };
  }

  /**
   * Cross-signing keys. The application service acts for its users without interactive auth (as
   * Synapse lets an MSC4190 application service). A self-signing or user-signing key must be signed
   * by the master key uploaded with it or kept already.
   */
  @Post('keys/device_signing/upload')
  @HttpCode(200)
  async deviceSigningUpload(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    const userId = requester.userId;
    const fields = asObject(body);
    const held = await this.store.deviceKeys.crossSigningKeys(userId);
    const uploads: Array<['master' | 'self_signing' | 'user_signing', Record<string, unknown>]> = [];
    try {
      let master: PublishedKey | undefined;
      if (fields.master_key !== undefined) {
        master = checkCrossSigningKey(fields.master_key, userId, 'master', undefined);
        uploads.push(['master', fields.master_key as Record<string, unknown>]);
      } else if (held.master) {
        master = checkCrossSigningKey(held.master, userId, 'master', undefined);
      }
      for (const usage of ['self_signing', 'user_signing'] as const) {
        const value = fields[`${usage}_key`];
        if (value === undefined) continue;
        checkCrossSigningKey(value, userId, usage, master);
        uploads.push([usage, value as Record<string, unknown>]);
      }
    } catch (error) {
      keyErrorToMatrix(error);
    }
    let streamId = 0;
    for (const [usage, key] of uploads) ({ streamId } = await this.store.deviceKeys.setCrossSigningKey(userId, usage, key));
    const uploaded = Object.fromEntries(uploads);
    if (uploads.length > 0) await this.announcer.announceSigningKeys(userId, streamId, { master: uploaded.master, self_signing: uploaded.self_signing });
    return {};
  }

  @Post('keys/query')
  @HttpCode(200)
  async query(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    const byServer = parseKeyQuery(body);
    const local = byServer.get(this.identity.serverName) ?? {};
    const answer = await queryLocalKeys(this.store.deviceKeys, local, { displayNames: true, requester: requester.userId });
    const failures: Record<string, unknown> = {};
    const timeoutMs = remoteTimeout(body);
    await Promise.all(
      [...byServer].map(async ([server, wanted]) => {
        if (server === this.identity.serverName) return;
        // Lists cached current (kept so by the server's EDUs) are answered here; the rest are asked.
        const left = await this.deviceLists.answerFromCache(wanted, answer, 10, timeoutMs);
        if (Object.keys(left).length === 0) return;
        const failure = await this.remote.query(server, left, timeoutMs, answer);
        if (failure) failures[server] = failure;
      }),
    );
    return { ...answer, failures };
  }

  @Post('keys/claim')
  @HttpCode(200)
  async claim(@Body() body: unknown) {
    const byServer = parseKeyClaim(body);
    const oneTimeKeys = await claimLocalKeys(this.store.deviceKeys, byServer.get(this.identity.serverName) ?? {});
    const failures: Record<string, unknown> = {};
    const timeoutMs = remoteTimeout(body);
    await Promise.all(
      [...byServer].map(async ([server, wanted]) => {
        if (server === this.identity.serverName) return;
        const { claimed, failure } = await this.remote.claim(server, wanted, timeoutMs);
        Object.assign(oneTimeKeys, claimed);
        if (failure) failures[server] = failure;
      }),
    );
    return { one_time_keys: oneTimeKeys, failures };
  }
}
