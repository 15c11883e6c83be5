// Keys of application-service users, client-server side: the AS uploads, queries and claims keys as its
// users (`user_id=`, and `device_id=` for uploads). Keys of this server's users come from the store;
// those of other servers' users come from their cached device lists when current (remote-device-lists.ts),
// else are asked of their servers (remote-keys.ts), each failure in `failures`.
import { Body, Controller, Get, HttpCode, Inject, Post, Query, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { checkCrossSigningKey, checkDeviceKeys, checkUploadedKeys, DEVICE_KEY_LIMITS, deviceKeyOf, type PublishedKey } from '@fedgate/protocol';
import { claimLocalKeys, queryLocalKeys } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { asObject } from '../rooms/room-actions';
import { DeviceListOutbox } from './device-list-outbox';
import { RemoteKeys, remoteTimeout } from './remote-keys';
import { RemoteDeviceLists } from './remote-device-lists';
import { keyErrorToMatrix, maskedDeviceId, parseDeviceListToken, parseKeyClaim, parseKeyQuery } from './e2ee-requests';
import { roomFellows } from './shared-rooms';

/** Log entries `/keys/changes` reads at most in one request. */
const MAX_CHANGES_SCANNED = 100_000;


@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class KeysController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly outbox: DeviceListOutbox,
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
      const { changed } = await this.store.deviceKeys.setDeviceKeys(userId, deviceId, keys);
      if (changed) await this.outbox.drainLogged();
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
    for (const [usage, key] of uploads) await this.store.deviceKeys.setCrossSigningKey(userId, usage, key);
    if (uploads.length > 0) await this.outbox.drainLogged();
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
    // The requester's own signatures of others' master keys (by their user-signing key) are theirs to see.
    for (const [userId, master] of Object.entries(answer.master_keys)) {
      if (userId === requester.userId) continue;
      const mine = await this.store.deviceKeys.userSigningSignatures(requester.userId, userId);
      if (Object.keys(mine).length === 0) continue;
      const signatures = (master.signatures ?? {}) as Record<string, Record<string, string>>;
      answer.master_keys[userId] = { ...master, signatures: { ...signatures, [requester.userId]: { ...signatures[requester.userId], ...mine } } };
    }
    return { ...answer, failures };
  }

  /**
   * Users whose device lists changed between two tokens (`dl<position>` in the device-list change log;
   * `to` defaults to now) and who share a room with the requester, and users who joined or left rooms in
   * that span and share none with the requester now (`left`).
   */
  @Get('keys/changes')
  async changes(@CurrentRequester() requester: Requester, @Query() query: Record<string, unknown>) {
    const from = parseDeviceListToken(query.from, 'from');
    const to = query.to === undefined ? await this.store.deviceLists.latestPosition() : parseDeviceListToken(query.to, 'to');
    const fellows = await roomFellows(this.store, requester.userId, this.identity.serverName);
    const changed = new Set<string>();
    const left = new Set<string>();
    let position = from;
    while (position < to) {
      if (position - from > MAX_CHANGES_SCANNED) throw MatrixError.tooLarge(`More than ${MAX_CHANGES_SCANNED} changes between the tokens: ask from a later token`);
      const batch = (await this.store.deviceLists.changesSince(position, 1000)).filter((c) => c.position <= to);
      if (batch.length === 0) break;
      for (const change of batch) {
        if (fellows.has(change.userId)) {
          changed.add(change.userId);
          left.delete(change.userId);
        } else if (change.kind === 'membership') {
          left.add(change.userId);
        }
      }
      position = batch[batch.length - 1]!.position;
    }
    return { changed: [...changed].sort(), left: [...left].sort() };
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
