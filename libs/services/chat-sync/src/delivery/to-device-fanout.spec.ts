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
const delivered = new Set<string>();
const store = {
  toDevice: {
    wasDelivered: async (origin: string, sender: string, id: string) => delivered.has(JSON.stringify([origin, sender, id])),
    markDelivered: async (origin: string, sender: string, id: string) => void delivered.add(JSON.stringify([origin, sender, id])),
  },
  deviceKeys: {
    listDevices: async (userId: string) => (devices[userId] ?? []).map((deviceId) => ({ userId, deviceId })),
    getDevice: async (userId: string, deviceId: string) => ((devices[userId] ?? []).includes(deviceId) ? { userId, deviceId } : null),
  },
} as unknown as Store;

function fanout() {
  delivered.clear();
  const published: Array<{ data: any; messageId?: string }> = [];
  const undelivered: Array<{ reason: string; recipient?: string; device?: string }> = [];
  let failFrom = Infinity;
  let calls = 0;
  const bus = {
    publish: async (_subject: string, data: unknown, options?: { messageId?: string }) => {
      if (++calls >= failFrom) throw new Error('simulated crash');
      // The bus deduplicates by message ID (within its window).
      if (!published.some((p) => p.messageId === options?.messageId)) published.push({ data, messageId: options?.messageId });
    },
  } as unknown as Bus;
  const f = new EduFanout(store, bus, busTopology({ prefix: 'todevice' }), registry, { onUndeliveredToDevice: ({ reason, recipient, device }) => void undelivered.push({ reason, recipient, device }) });
  return { fanout: f, published, undelivered, crashAt: (n: number) => ((failFrom = n), (calls = 0)) };
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
    // IDs from (origin, sender, message_id): the same message is the same push, whatever transaction carried it.
    expect(published.map((p) => p.messageId)).toEqual([expect.stringMatching(/^bridge:to-device:.+:to-device:0$/), expect.stringMatching(/^bridge:to-device:.+:to-device:1$/)]);
    f.stop();
  });

  it('hands a message sent again in another transaction (same message_id) on once, and reports the duplicate', async () => {
    const { fanout: f, published, undelivered } = fanout();
    const message = edu('remote.test', '@alice:remote.test', { '@chat_bob:gw.test': { PHONE: { c: 1 } } });
    await f.handle(message, 'remote.test:txn-1:0');
    await f.handle({ ...message, txnId: 'txn-2' }, 'remote.test:txn-2:0');
    expect(published).toHaveLength(1);
    expect(undelivered).toEqual([{ reason: 'duplicate_message_id', recipient: undefined, device: undefined }]);
    // Another sender's message with the same message_id is another message.
    await f.handle(edu('remote.test', '@carol:remote.test', { '@chat_bob:gw.test': { PHONE: { c: 2 } } }), 'remote.test:txn-3:0');
    expect(published).toHaveLength(2);
    f.stop();
  });

  it('a process dying between handing a message on and recording it: handled again, it is the same pushes (deduplicated), once', async () => {
    const { fanout: f, published, crashAt } = fanout();
    const message = edu('remote.test', '@alice:remote.test', { '@chat_bob:gw.test': { '*': { c: 1 } } });
    crashAt(2);
    await expect(f.handle(message, 'remote.test:txn-1:0')).rejects.toThrow('simulated crash');
    crashAt(Infinity);
    await f.handle(message, 'remote.test:txn-1:0');
    await f.handle({ ...message, txnId: 'txn-9' }, 'remote.test:txn-9:0');
    expect(published.map((p) => p.data.event.to_device_id)).toEqual(['PHONE', 'LAPTOP']);
    f.stop();
  });

  it('delivers nothing when the origin does not own the sender', async () => {
    const { fanout: f, published, undelivered } = fanout();
    await f.handle(edu('evil.test', '@alice:remote.test', { '@chat_bob:gw.test': { PHONE: { c: 1 } } }), 'msg');
    expect(published).toEqual([]);
    expect(undelivered).toEqual([{ reason: 'not_origin_user', recipient: undefined, device: undefined }]);
    f.stop();
  });

  it('delivers nothing when the sender lacks the "@" sigil (`x:<origin>`): no user of the origin (strict origin check)', async () => {
    const { fanout: f, published, undelivered } = fanout();
    await f.handle(edu('remote.test', 'x:remote.test', { '@chat_bob:gw.test': { PHONE: { c: 1 } } }), 'msg');
    expect(published).toEqual([]);
    expect(undelivered).toEqual([{ reason: 'not_origin_user', recipient: undefined, device: undefined }]);
    f.stop();
  });
});
