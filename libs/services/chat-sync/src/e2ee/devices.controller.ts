// Devices of application-service users (MSC4190 as Synapse implements it): the AS creates, renames and
// deletes its users' devices with its as_token and `user_id=`, no login and no interactive auth. Every
// change moves the user's device-list stream id.
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { STORE, type Store } from '@fedgate/platform';
import type { DeviceRecord } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { DeviceListOutbox } from './device-list-outbox';
import { assertDeviceId, parseDisplayName } from './e2ee-requests';

const MAX_DELETE_DEVICES = 1000;

const deviceBody = (d: DeviceRecord) => ({ device_id: d.deviceId, display_name: d.displayName ?? undefined });

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class DevicesController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly outbox: DeviceListOutbox,
  ) {}

  @Get('devices')
  async list(@CurrentRequester() requester: Requester) {
    return { devices: (await this.store.deviceKeys.listDevices(requester.userId)).map(deviceBody) };
  }

  @Get('devices/:deviceId')
  async get(@CurrentRequester() requester: Requester, @Param('deviceId') deviceId: string) {
    const device = await this.store.deviceKeys.getDevice(requester.userId, assertDeviceId(deviceId));
    if (!device) throw MatrixError.notFound('Device not found');
    return deviceBody(device);
  }

  /** Creates the device (201) when missing, as Synapse does for an application service; renames it otherwise (200). */
  @Put('devices/:deviceId')
  async put(@CurrentRequester() requester: Requester, @Param('deviceId') deviceId: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const displayName = parseDisplayName(body);
    const { created, changed } = await this.store.deviceKeys.putDevice(requester.userId, assertDeviceId(deviceId), displayName);
    if (changed) await this.outbox.drainLogged();
    if (created) reply.status(201);
    return {};
  }

  /** Deleting a device that is already gone answers 200 too, so a retried delete succeeds. */
  @Delete('devices/:deviceId')
  async delete(@CurrentRequester() requester: Requester, @Param('deviceId') deviceId: string) {
    await this.remove(requester.userId, assertDeviceId(deviceId));
    return {};
  }

  @Post('delete_devices')
  @HttpCode(200)
  async deleteMany(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    const devices = (body as { devices?: unknown } | undefined)?.devices;
    if (!Array.isArray(devices)) throw MatrixError.badJson('devices must be a list of device IDs');
    if (devices.length > MAX_DELETE_DEVICES) throw MatrixError.tooLarge(`At most ${MAX_DELETE_DEVICES} devices per request`);
    const ids = devices.map(assertDeviceId);
    for (const id of ids) await this.remove(requester.userId, id);
    return {};
  }

  private async remove(userId: string, deviceId: string): Promise<void> {
    const { deleted } = await this.store.deviceKeys.deleteDevice(userId, deviceId);
    if (deleted) await this.outbox.drainLogged();
  }
}
