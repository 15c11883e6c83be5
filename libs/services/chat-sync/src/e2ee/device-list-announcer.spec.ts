import { busTopology } from '@fedgate/bus';
import type { Bus, ServerIdentity, Store } from '@fedgate/platform';
import { DeviceListAnnouncer } from './device-list-announcer';

const topology = busTopology({ prefix: 'announcer' });

function announcerWith(rooms: Record<string, string[]>) {
  const published: Array<{ subject: string; data: any; messageId?: string }> = [];
  const store = {
    memberships: { roomsOf: async (userId: string, membership: string) => (userId === '@alice:gw.test' && membership === 'join' ? Object.keys(rooms) : []) },
    rooms: { getJoinedServers: async (roomId: string) => rooms[roomId] ?? [] },
  } as unknown as Store;
  const bus = { publish: async (subject: string, data: unknown, options?: { messageId?: string }) => void published.push({ subject, data, messageId: options?.messageId }) } as unknown as Bus;
  const identity = { serverName: 'gw.test' } as ServerIdentity;
  return { announcer: new DeviceListAnnouncer(store, bus, topology, identity), published };
}

describe('m.device_list_update announcements', () => {
  it('go to every other server sharing a room with the user, chained by stream id, once per change', async () => {
    const { announcer, published } = announcerWith({ '!a:gw.test': ['gw.test', 'one.test'], '!b:gw.test': ['two.test', 'one.test', 'gw.test'] });
    await announcer.announce({ userId: '@alice:gw.test', deviceId: 'PHONE', streamId: 1, keys: { device_id: 'PHONE' } });
    await announcer.announce({ userId: '@alice:gw.test', deviceId: 'PHONE', streamId: 2, deleted: true });
    expect(published.map((p) => p.subject)).toEqual([topology.outboundEdu.subject, topology.outboundEdu.subject]);
    expect(published.map((p) => p.data.destinations)).toEqual([
      ['one.test', 'two.test'],
      ['one.test', 'two.test'],
    ]);
    expect(published.map((p) => p.data.content)).toEqual([
      { user_id: '@alice:gw.test', device_id: 'PHONE', stream_id: 1, prev_id: [], keys: { device_id: 'PHONE' } },
      { user_id: '@alice:gw.test', device_id: 'PHONE', stream_id: 2, prev_id: [1], deleted: true },
    ]);
    expect(published.every((p) => p.data.eduType === 'm.device_list_update' && p.messageId === p.data.eduId)).toBe(true);
    expect(new Set(published.map((p) => p.messageId)).size).toBe(2);
  });

  it('send nothing when no other server shares a room with the user', async () => {
    const { announcer, published } = announcerWith({ '!local:gw.test': ['gw.test'] });
    await announcer.announce({ userId: '@alice:gw.test', deviceId: 'PHONE', streamId: 3 });
    expect(published).toEqual([]);
  });
});
