// fedgate's transaction pusher against the test bridge's receiving side (matrix-appservice): the
// registration the bridge writes loads in fedgate, transactions authenticate with the hs_token and
// arrive in order, ephemeral events reach the library under the name it reads, and a wrong hs_token
// is refused and retried rather than lost.
import { TestBridge } from '@fedgate/testing';
import { loadRegistrationFile } from '@fedgate/chat-sync';
import { AppServiceClient, InMemoryTransactionQueue, TransactionPusher, type DeliveryFailure } from '@fedgate/chat-sync';

const serverName = 'fedgate.test';
const message = (n: number) => ({
  type: 'm.room.message',
  event_id: `$m${n}`,
  room_id: '!room:fedgate.test',
  sender: '@alice:remote.test',
  origin_server_ts: 1_700_000_000_000 + n,
  content: { msgtype: 'm.text', body: `message ${n}` },
});

describe('test bridge receives transactions from fedgate’s pusher', () => {
  let bridge: TestBridge;
  let pusher: TransactionPusher | undefined;

  beforeEach(async () => {
    bridge = await TestBridge.start({ homeserverUrl: 'http://127.0.0.1:9', serverName, prefix: 'rc' });
  });
  afterEach(async () => {
    await pusher?.stop();
    pusher = undefined;
    await bridge.stop();
  });

  it('loads the bridge registration and delivers events and ephemeral events in order', async () => {
    const registration = await loadRegistrationFile(bridge.registrationPath);
    expect(registration).toMatchObject({ id: 'test-bridge-rc', url: bridge.url, senderLocalpart: 'rc_bot', receiveEphemeral: true });
    pusher = new TransactionPusher({
      queue: new InMemoryTransactionQueue(),
      client: new AppServiceClient({ requestTimeoutMs: 5_000 }),
      registrations: [registration],
      limits: { maxEvents: 3, maxEphemeral: 3 },
    });
    for (let n = 1; n <= 10; n++) await pusher.pushEvent(registration.id, message(n));
    await pusher.pushEphemeral(registration.id, { type: 'm.typing', room_id: '!room:fedgate.test', content: { user_ids: ['@alice:remote.test'] } });
    await pusher.idle();

    await bridge.waitForEvent((e) => e.event_id === '$m10', 5_000);
    expect(bridge.received.events().map((e) => e.event_id)).toEqual(Array.from({ length: 10 }, (_, i) => `$m${i + 1}`));
    const typing = await bridge.received.waitForEphemeral((e) => e.type === 'm.typing', 5_000);
    expect(typing.content).toEqual({ user_ids: ['@alice:remote.test'] });
  });

  it('a wrong hs_token is refused by the bridge and the transaction stays queued', async () => {
    const registration = await loadRegistrationFile(bridge.registrationPath);
    const failures: DeliveryFailure[] = [];
    pusher = new TransactionPusher({
      queue: new InMemoryTransactionQueue(),
      client: new AppServiceClient({ requestTimeoutMs: 5_000 }),
      registrations: [{ ...registration, hsToken: 'not-the-token' }],
      backoff: { initialDelayMs: 10, maxDelayMs: 20 },
      onDeliveryFailure: (failure) => failures.push(failure),
    });
    await pusher.pushEvent(registration.id, message(1));
    while (failures.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(failures[0].error).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(failures.map((f) => f.txnId)).toEqual(['1', '1']);
    expect(bridge.received.all()).toHaveLength(0);
  });
});
