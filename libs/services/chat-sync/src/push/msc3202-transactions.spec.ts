// Issue 13: MSC3202 in application-service transactions, as Synapse sends it when the registration has
// `org.matrix.msc3202: true`: device-list changes (changed/left), one-time key counts and unused fallback
// key types, under the unstable names (and the old `device_one_time_key_counts`) and the stable ones.
import { AppServiceClient } from './app-service-client';
import { fakeRegistration } from '../registration/fake-registration';
import { FakeAppService } from './fake-app-service';
import { InMemoryTransactionQueue } from './in-memory-transaction-queue';
import { TransactionPusher } from './transaction-pusher';

const registration = (id: string, url: string, msc3202: boolean) => fakeRegistration(id, url, { receiveEphemeral: true, msc3202 });


describe('MSC3202 transaction fields (issue 13)', () => {
  let as: FakeAppService;
  let url: string;
  let pusher: TransactionPusher | undefined;
  beforeEach(async () => {
    as = new FakeAppService();
    url = await as.start();
  });
  afterEach(async () => {
    await pusher?.stop();
    await as.stop();
  });

  it('gathers device-list changes (latest word per user) and sends them with the key counts of the users in the transaction, only to services with MSC3202', async () => {
    const counts = { oneTimeKeys: { '@chat_a:hs.test': { PHONE: { signed_curve25519: 3 } } }, unusedFallbackKeyTypes: { '@chat_a:hs.test': { PHONE: ['signed_curve25519'] } } };
    const asked: string[] = [];
    const queue = new InMemoryTransactionQueue();
    pusher = new TransactionPusher({
      queue,
      client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
      registrations: [registration('crypto', `${url}/crypto`, true), registration('plain', `${url}/plain`, false)],
      keyCounts: async (r, t) => {
        asked.push(`${r.id}:${t.txnId}`);
        return counts;
      },
    });
    const items = [
      { kind: 'device_list', event: { user_id: '@b:remote.test' } },
      { kind: 'device_list', event: { user_id: '@c:remote.test', left: true } },
      { kind: 'device_list', event: { user_id: '@b:remote.test', left: true } },
      { kind: 'device_list', event: { user_id: '@c:remote.test' } },
      { kind: 'event', event: { type: 'm.room.message', event_id: '$1', room_id: '!r:hs.test', sender: '@chat_a:hs.test', content: {} } },
    ] as const;
    // Queued before delivery starts, so they leave in one transaction.
    for (const item of items) await queue.enqueue('crypto', item);
    for (const item of items) await pusher.push('plain', item);
    expect(queue.pendingCount('plain')).toBeLessThanOrEqual(1);
    pusher.start();
    await pusher.idle();
    const bodies = Object.fromEntries(as.requests.filter((r) => r.method === 'PUT').map((r) => [r.url.split('/')[1], r.body as Record<string, unknown>]));
    const lists = { changed: ['@c:remote.test'], left: ['@b:remote.test'] };
    expect(bodies.crypto).toMatchObject({
      'org.matrix.msc3202.device_lists': lists,
      device_lists: lists,
      'org.matrix.msc3202.device_one_time_keys_count': counts.oneTimeKeys,
      'org.matrix.msc3202.device_one_time_key_counts': counts.oneTimeKeys,
      device_one_time_keys_count: counts.oneTimeKeys,
      'org.matrix.msc3202.device_unused_fallback_key_types': counts.unusedFallbackKeyTypes,
      device_unused_fallback_key_types: counts.unusedFallbackKeyTypes,
    });
    expect(Object.keys(bodies.plain!).filter((k) => k.includes('device'))).toEqual([]);
    expect(asked).toEqual(['crypto:1']);
  });
});
