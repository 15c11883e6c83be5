// Other servers asking for the devices and keys of this server's users, to encrypt for them:
// `/user/devices/{userId}`, `/user/keys/query`, `/user/keys/claim`. Only users of this server are
// answered; a request naming anyone else is refused whole. Device display names are not shared over
// federation.
import { Body, Controller, Get, HttpCode, Inject, Param, Post, UseGuards, UseInterceptors } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { parseUserId } from '@fedgate/protocol';
import { claimLocalKeys, localUserDevices, queryLocalKeys } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { isObject } from '@fedgate/room-state';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { XMatrixGuard } from '../auth/x-matrix.guard';

/** Users, and devices of all users together, in one query or claim. */
export const MAX_FEDERATION_KEY_USERS = 1000;
export const MAX_FEDERATION_KEY_DEVICES = 10_000;

@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class UserKeysController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Get('user/devices/:userId')
  async devices(@Param('userId') userId: string) {
    this.assertLocal(userId);
    return localUserDevices(this.store.deviceKeys, userId);
  }

  @Post('user/keys/query')
  @HttpCode(200)
  async query(@Body() body: unknown) {
    if (!isObject(body) || !isObject(body.device_keys)) throw MatrixError.badJson('device_keys must be an object of user ID to device IDs');
    const wanted = body.device_keys;
    let devices = 0;
    for (const [userId, deviceIds] of Object.entries(wanted)) {
      this.assertLocal(userId);
      if (!Array.isArray(deviceIds) || !deviceIds.every((d) => typeof d === 'string')) throw MatrixError.badJson(`device_keys[${JSON.stringify(userId)}] must be a list of device IDs`);
      devices += deviceIds.length;
    }
    assertBounded(Object.keys(wanted).length, devices);
    const { device_keys, master_keys, self_signing_keys } = await queryLocalKeys(this.store.deviceKeys, wanted as Record<string, string[]>, { displayNames: false });
    return { device_keys, master_keys, self_signing_keys };
  }

  @Post('user/keys/claim')
  @HttpCode(200)
  async claim(@Body() body: unknown) {
    if (!isObject(body) || !isObject(body.one_time_keys)) throw MatrixError.badJson('one_time_keys must be an object of user ID to device ID to algorithm');
    const wanted = body.one_time_keys;
    let devices = 0;
    for (const [userId, byDevice] of Object.entries(wanted)) {
      this.assertLocal(userId);
      if (!isObject(byDevice) || !Object.values(byDevice).every((a) => typeof a === 'string')) throw MatrixError.badJson(`one_time_keys[${JSON.stringify(userId)}] must map device IDs to algorithms`);
      devices += Object.keys(byDevice).length;
    }
    assertBounded(Object.keys(wanted).length, devices);
    return { one_time_keys: await claimLocalKeys(this.store.deviceKeys, wanted as Record<string, Record<string, string>>) };
  }

  private assertLocal(userId: string): void {
    let server: string | undefined;
    try {
      server = parseUserId(userId, { allowHistorical: true }).serverName;
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId.slice(0, 64))} is not a user ID`);
    }
    if (server !== this.identity.serverName) throw MatrixError.invalidParam(`User ${userId} is not on this server`);
  }
}

function assertBounded(users: number, devices: number): void {
  if (users > MAX_FEDERATION_KEY_USERS) throw MatrixError.tooLarge(`At most ${MAX_FEDERATION_KEY_USERS} users per request`);
  if (devices > MAX_FEDERATION_KEY_DEVICES) throw MatrixError.tooLarge(`At most ${MAX_FEDERATION_KEY_DEVICES} devices per request`);
}
