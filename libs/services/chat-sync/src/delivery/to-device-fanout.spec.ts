// Issue 13: to-device messages (m.direct_to_device, remote or local) reach the owning application service
// as `to_device` pushes, one per existing device, and only when the origin speaks for the sender.
import type { InboundEdu } from '@fedgate/bus';
import { busTopology } from '@fedgate/bus';
import type { Bus, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry } from '../registration';
import { EduFanout } from './edu-fanout';

const registry = new ApplicationServiceRegistry(
  [
    {
      id: 'bridge',
      url: 'http://bridge.invalid',
      asToken: 'as',
      hsToken: 'hs',
      senderLocalpart: 'bridge',
      namespaces: { users: [{ regex: '@chat_.*:gw\\.test', exclusive: true }], aliases: [], rooms: [] },
      rateLimited: false,
      receiveEphemeral: true,
      protocols: [],
      source: 'test',
    },
  ],
  'gw.test',
);
const devices: Record<string, string[]> = { '@chat_bob:gw.test': ['PHONE', 'LAPTOP'] };
const store = {
  deviceKeys: {
    listDevices: async (userId: string) => (devices[userId] ?? []).map((deviceId) => ({ userId, deviceId })),
    getDevice: async (userId: string, deviceId: string) => ((devices[userId] ?? []).includes(deviceId) ? { userId, deviceId } : null),
  },
} as unknown as Store;

function fanout() {
  const published: Array<{ data: any; messageId?: string }> = [];
  const undelivered: Array<{ reason: string; recipient?: string; device?: string }> = [];
  const bus = { publish: async (_subject: string, data: unknown, options?: { messageId?: string }) => void published.push({ data, messageId: options?.messageId }) } as unknown as Bus;
  const f = new EduFanout(store, bus, busTopology({ prefix: 'todevice' }), registry, { onUndeliveredToDevice: ({ reason, recipient, device }) => void undelivered.push({ reason, recipient, device }) });
  return { fanout: f, published, undelivered };
}
const edu = (origin: string, sender: string, messages: Record<string, unknown>): InboundEdu => ({
  origin,
  txnId: 't',
  eduType: 'm.direct_to_device',
  receivedAt: 1,
  content: { sender, type: 'm.room.encrypted', message_id: 'm1', messages },
});

describe('to-device messages to the application service', () => {
  it('pushes one to_device item per existing device named (* for all), to the service owning the user', async () => {
    const { fanout: f, published, undelivered } = fanout();
    await f.handle(edu('remote.test', '@alice:remote.test', { '@chat_bob:gw.test': { '*': { c: 1 }, NOPE: { c: 2 } }, '@unowned:gw.test': { X: { c: 3 } } }), 'msg');
    // What could not be delivered is reported with the reason, never dropped silently.
    expect(undelivered).toEqual([
      { reason: 'unknown_device', recipient: '@chat_bob:gw.test', device: 'NOPE' },
      { reason: 'no_application_service', recipient: '@unowned:gw.test', device: undefined },
    ]);
    expect(published.map((p) => [p.data.kind, p.data.appserviceId, p.data.event])).toEqual([
      ['to_device', 'bridge', { type: 'm.room.encrypted', sender: '@alice:remote.test', content: { c: 1 }, to_user_id: '@chat_bob:gw.test', to_device_id: 'PHONE' }],
      ['to_device', 'bridge', { type: 'm.room.encrypted', sender: '@alice:remote.test', content: { c: 1 }, to_user_id: '@chat_bob:gw.test', to_device_id: 'LAPTOP' }],
    ]);
    // Deterministic IDs: a redelivered EDU is deduplicated by the bus.
    expect(published.map((p) => p.messageId)).toEqual(['bridge:msg:to-device:0', 'bridge:msg:to-device:1']);
    f.stop();
  });

  it('delivers nothing when the origin does not own the sender', async () => {
    const { fanout: f, published, undelivered } = fanout();
    await f.handle(edu('evil.test', '@alice:remote.test', { '@chat_bob:gw.test': { PHONE: { c: 1 } } }), 'msg');
    expect(published).toEqual([]);
    expect(undelivered).toEqual([{ reason: 'not_origin_user', recipient: undefined, device: undefined }]);
    f.stop();
  });
});
