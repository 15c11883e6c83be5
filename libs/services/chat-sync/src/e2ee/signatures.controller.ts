// `/keys/signatures/upload` for AS users: signatures of keys already published, checked before they are
// kept: the user's own devices signed by their self-signing key, their own master key signed by one of
// their devices, other users' master keys signed by their user-signing key (kept for the signer alone,
// who sees them in `/keys/query`). Each key that fails is named in `failures`; the rest are kept.
import { Body, Controller, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { addCheckedSignature, crossSigningKeyOf, DeviceKeyError, deviceKeyOf, parseUserId, type PublishedKey } from '@fedgate/protocol';
import type { KeyObject, KeyQueryAnswer } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { isObject } from '@fedgate/room-state';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { DeviceListOutbox } from './device-list-outbox';
import { RemoteDeviceLists } from './remote-device-lists';
import { RemoteKeys } from './remote-keys';

/** Signed objects in one upload, all users together. */
export const MAX_SIGNATURE_UPLOADS = 1000;

class SignatureFailure extends Error {
  constructor(
    readonly errcode: string,
    message: string,
  ) {
    super(message);
  }
}

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class SignaturesController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly outbox: DeviceListOutbox,
    private readonly deviceLists: RemoteDeviceLists,
    private readonly remote: RemoteKeys,
  ) {}

  @Post('keys/signatures/upload')
  @HttpCode(200)
  async upload(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    if (!isObject(body) || !Object.values(body).every(isObject)) throw MatrixError.badJson('The body must map user IDs to key IDs to signed objects');
    const count = Object.values(body).reduce<number>((n, byKey) => n + Object.keys(byKey as object).length, 0);
    if (count > MAX_SIGNATURE_UPLOADS) throw MatrixError.tooLarge(`At most ${MAX_SIGNATURE_UPLOADS} signed objects per request`);
    const signer = requester.userId;
    const failures: Record<string, Record<string, { errcode: string; error: string }>> = {};
    let changed = false;
    for (const [target, byKey] of Object.entries(body as Record<string, Record<string, unknown>>)) {
      for (const [keyId, signed] of Object.entries(byKey)) {
        try {
          changed = (target === signer ? await this.signOwn(signer, keyId, signed) : await this.signOther(signer, target, keyId, signed)) || changed;
        } catch (error) {
          if (error instanceof SignatureFailure) (failures[target] ??= {})[keyId] = { errcode: error.errcode, error: error.message };
          else if (error instanceof DeviceKeyError) (failures[target] ??= {})[keyId] = { errcode: 'M_INVALID_SIGNATURE', error: error.message };
          else throw error;
        }
      }
    }
    if (changed) await this.outbox.drainLogged();
    return { failures };
  }

  /** The signer's own device (by their self-signing key) or master key (by one of their devices). */
  private async signOwn(userId: string, keyId: string, signed: unknown): Promise<boolean> {
    const own = await this.store.deviceKeys.crossSigningKeys(userId);
    const master = crossSigningKeyOf(own.master);
    if (master && own.master && keyId === master.keyId.slice('ed25519:'.length)) {
      const device = await this.signingDevice(userId, signed, master.keyId);
      await this.store.deviceKeys.setCrossSigningKey(userId, 'master', addCheckedSignature(own.master, signed, userId, device));
      return true;
    }
    const device = await this.store.deviceKeys.getDevice(userId, keyId);
    if (!device?.keys) throw new SignatureFailure('M_NOT_FOUND', `${userId} has no device ${keyId} with keys, and no master key of that ID`);
    const selfSigning = crossSigningKeyOf(own.self_signing);
    if (!selfSigning) throw new SignatureFailure('M_INVALID_SIGNATURE', `${userId} has no self-signing key to sign devices with`);
    const { changed } = await this.store.deviceKeys.setDeviceKeys(userId, keyId, addCheckedSignature(device.keys, signed, userId, selfSigning));
    return changed;
  }

  /** The device of the user whose signature is on their master key. */
  private async signingDevice(userId: string, signed: unknown, masterKeyId: string): Promise<PublishedKey> {
    const signatures = isObject(signed) && isObject(signed.signatures) && isObject(signed.signatures[userId]) ? Object.keys(signed.signatures[userId] as object) : [];
    for (const keyId of signatures) {
      if (keyId === masterKeyId || !keyId.startsWith('ed25519:')) continue;
      const deviceId = keyId.slice('ed25519:'.length);
      const key = deviceKeyOf((await this.store.deviceKeys.getDevice(userId, deviceId))?.keys, deviceId);
      if (key) return key;
    }
    throw new SignatureFailure('M_INVALID_SIGNATURE', `the master key is not signed by a device of ${userId}`);
  }

  /** Another user's master key, signed by the signer's user-signing key. */
  private async signOther(signer: string, target: string, keyId: string, signed: unknown): Promise<boolean> {
    const userSigning = crossSigningKeyOf((await this.store.deviceKeys.crossSigningKeys(signer)).user_signing);
    if (!userSigning) throw new SignatureFailure('M_INVALID_SIGNATURE', `${signer} has no user-signing key to sign other users with`);
    const master = await this.masterKeyOf(target);
    if (!master || crossSigningKeyOf(master)?.keyId !== `ed25519:${keyId}`) throw new SignatureFailure('M_NOT_FOUND', `${target} has no master key ${keyId}`);
    const merged = addCheckedSignature(master, signed, signer, userSigning);
    const signature = (merged.signatures as Record<string, Record<string, string>>)[signer]![userSigning.keyId]!;
    await this.store.deviceKeys.addUserSigningSignature(signer, target, userSigning.keyId, signature);
    return false;
  }

  private async masterKeyOf(userId: string): Promise<KeyObject | undefined> {
    let server: string;
    try {
      server = parseUserId(userId, { allowHistorical: true }).serverName;
    } catch {
      throw new SignatureFailure('M_INVALID_PARAM', `${JSON.stringify(userId.slice(0, 64))} is not a user ID`);
    }
    if (server === this.identity.serverName) return (await this.store.deviceKeys.crossSigningKeys(userId)).master;
    const cached = await this.deviceLists.fresh(userId);
    if (cached) return cached.masterKey ?? undefined;
    const answer: KeyQueryAnswer = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} };
    await this.remote.query(server, { [userId]: [] }, 10_000, answer);
    return answer.master_keys[userId];
  }
}
