// chaos-dup (CI red: the chaos suite saw one message pushed twice to an application service). On the distributed
// shape's parts, NATS JetStream and the MongoDB-wire store: an AppServicePush handed to the AS's consumer again
// after the pusher already delivered its item must not reach the AS a second time. It is handed over again when
// the consumer's ack is lost (chat-sync killed after the item was queued, NATS down before the ack arrived, the
// queue write applied but answered with an error in a store outage) or when it is published again later than
// JetStream's duplicate window (a room-log entry redelivered or published again, a repair path).
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { busOptionsFor, busTopology, JetStreamBus, nak, type AppServicePush, type BusSubscription } from '@fedgate/bus';
import { openMongoStore, type Store } from '@fedgate/store';
import { AppServiceClient, TransactionPusher } from '../push';
import { FakeAppService } from '../push/fake-app-service';
import { fakeRegistration } from '../registration/fake-registration';
import { StoreTransactionQueue } from './store-transaction-queue';

jest.setTimeout(60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('an AppServicePush handed over again after its item was delivered (chaos-dup)', () => {
  const unique = `asdup_${randomBytes(4).toString('hex')}`;
  // A short duplicate window, so a publish "later than the window" takes a moment rather than two minutes.
  const topology = busTopology({ prefix: unique, duplicateWindowMs: 200 });
  let store: Store;
  let bus: JetStreamBus;
  let as: FakeAppService;
  let pusher: TransactionPusher;
  let subscription: BusSubscription | undefined;
  const registration = () => fakeRegistration('chat', asUrl);
  let asUrl = '';
  /** What the queue refused as delivered already (chat-sync logs it). */
  const handedOverAgain: string[] = [];

  beforeAll(async () => {
    store = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, `fedgate_${unique}`);
    bus = await JetStreamBus.connect({ servers: process.env.FEDGATE_TEST_NATS_URL! }, busOptionsFor(topology));
    await bus.start();
    as = new FakeAppService();
    asUrl = await as.start();
    pusher = new TransactionPusher({
      queue: new StoreTransactionQueue(store, (_as, itemId) => handedOverAgain.push(itemId)),
      client: new AppServiceClient({ requestTimeoutMs: 5_000 }),
      registrations: [registration()],
      backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    });
    pusher.start();
  });
  afterAll(async () => {
    await subscription?.stop();
    await pusher?.stop();
    await as?.stop();
    await bus?.close();
    await store?.close();
    const client = await MongoClient.connect(process.env.FEDGATE_TEST_MONGO_URL!);
    await client.db(`fedgate_${unique}`).dropDatabase();
    await client.close();
  });

  const event = (eventId: string) => ({ type: 'm.room.message', event_id: eventId, room_id: '!r:hs.test', sender: '@a:hs.test', content: { body: eventId } });
  const publishPush = (eventId: string) =>
    bus.publish(topology.appservice.subjectFor('chat'), { appserviceId: 'chat', roomId: '!r:hs.test', eventId, event: event(eventId), kind: 'event' }, { messageId: `chat:${eventId}` });
  /** Event IDs in the transactions the AS accepted (each txnId once, as an AS deduplicates). */
  const pushedEventIds = () => as.acceptedTransactions().flatMap((t) => (t.body.events as Array<{ event_id: string }>).map((e) => e.event_id));
  async function untilPushed(eventId: string): Promise<void> {
    for (let waited = 0; !pushedEventIds().includes(eventId); waited += 50) {
      if (waited > 30_000) throw new Error(`${eventId} never reached the AS; it got ${pushedEventIds().join(', ')}`);
      await sleep(50);
    }
  }

  /** The AS's consumer as chat-sync runs it, with `beforeAck` run after the item is queued, before the bus ack. */
  async function consume(beforeAck: (push: AppServicePush) => Promise<ReturnType<typeof nak> | void>): Promise<void> {
    subscription = await bus.consume(topology.consumers.appservicePush('chat'), async (message) => {
      const push: AppServicePush = message.data;
      await pusher.push('chat', { kind: push.kind ?? 'event', event: push.event, id: push.eventId });
      return beforeAck(push);
    });
  }

  it('the consumer cut short after queueing (ack lost), redelivered once the pusher delivered the item: the AS gets it once', async () => {
    const cutShort = new Set<string>();
    await consume(async (push) => {
      if (push.eventId !== '$cut' || cutShort.has(push.eventId)) return;
      cutShort.add(push.eventId);
      // The process dies (or NATS goes away) here: the item is queued and goes out, the bus never hears of it.
      await untilPushed('$cut');
      await pusher.idle(); // and its transaction acked: the item left the queue
      return nak(0);
    });
    await publishPush('$cut');
    await publishPush('$after-cut');
    await untilPushed('$after-cut');
    expect(pushedEventIds()).toEqual(['$cut', '$after-cut']);
    expect(handedOverAgain).toEqual(['$cut']);
    await subscription?.stop();
    subscription = undefined;
  });

  it('the same push published again later than the bus duplicate window (a room-log entry handled again): the AS gets it once', async () => {
    await consume(async () => undefined);
    await publishPush('$late');
    await untilPushed('$late');
    await sleep(topology.streams.appservice.duplicateWindowMs + 300);
    await publishPush('$late');
    await publishPush('$after-late');
    await untilPushed('$after-late');
    expect(pushedEventIds().filter((id) => id === '$late' || id === '$after-late')).toEqual(['$late', '$after-late']);
    expect(handedOverAgain).toContain('$late');
  });
});
