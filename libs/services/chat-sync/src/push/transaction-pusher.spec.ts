import type { AppServiceRegistration } from '../registration';
import { AppServiceClient, AppServiceRequestError } from './app-service-client';
import { fakeRegistration } from '../registration/fake-registration';
import { FakeAppService } from './fake-app-service';
import { InMemoryTransactionQueue } from './in-memory-transaction-queue';
import type { QueuedItem } from './transaction-queue';
import { TransactionPusher, type DeliveryFailure, type DeliverySuccess } from './transaction-pusher';

const registration = (id: string, url: string | null, receiveEphemeral = false) => fakeRegistration(id, url, { receiveEphemeral });

const event = (n: number) => ({ type: 'm.room.message', event_id: `$e${n}`, room_id: '!r:hs.test', sender: '@a:hs.test', content: { body: `${n}` } });

describe('TransactionPusher against a loopback application service', () => {
  let as: FakeAppService;
  let url: string;
  let pusher: TransactionPusher | undefined;
  const failures: DeliveryFailure[] = [];

  beforeEach(async () => {
    as = new FakeAppService();
    url = await as.start();
    failures.length = 0;
  });
  afterEach(async () => {
    await pusher?.stop();
    pusher = undefined;
    await as.stop();
  });

  function makePusher(registrations: AppServiceRegistration[], queue = new InMemoryTransactionQueue(), maxEvents = 100) {
    pusher = new TransactionPusher({
      queue,
      client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
      registrations,
      backoff: { initialDelayMs: 5, maxDelayMs: 40 },
      limits: { maxEvents, maxEphemeral: 100 },
      onDeliveryFailure: (failure) => failures.push(failure),
    });
    return pusher;
  }

  // Issue 19: each push was its own queue write (an SQLite commit per event in the embedded shape).
  it('issue 19: pushes held for a bus run go to the queue in one enqueueMany with the run’s last (or at flushHeld), in order', async () => {
    const writes: string[][] = [];
    const queue = new (class extends InMemoryTransactionQueue {
      async enqueueMany(appServiceId: string, items: readonly QueuedItem[]): Promise<void> {
        writes.push(items.map((i) => String(i.id)));
        for (const item of items) await this.enqueue(appServiceId, item);
      }
    })();
    const p = makePusher([registration('chat', `${url}/`)], queue);
    const item = (n: number) => ({ kind: 'event' as const, event: event(n), id: `$e${n}` });
    await p.push('chat', item(1), { defer: true });
    await p.push('chat', item(2), { defer: true });
    await p.idle();
    expect(as.requests).toHaveLength(0);
    await p.push('chat', item(3));
    await p.push('chat', item(4), { defer: true });
    await p.flushHeld();
    expect(writes).toEqual([['$e1', '$e2', '$e3']]);
    await p.idle();
    expect(as.requests.flatMap((r) => (r.body as { events: Array<{ event_id: string }> }).events.map((e) => e.event_id))).toEqual(['$e1', '$e2', '$e3', '$e4']);
  });

  // as-lag (issue 19, distributed): a lease stale for a moment (its renewal slow on a loaded store) held pushing
  // back until the next look a second later, each time; now the renewal itself wakes delivery.
  it('pushes as soon as a stale AS lease is renewed, not at the next fixed look (the pusher\'s timer never fires here)', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'performance', 'Date', 'hrtime'] });
    try {
      let mine = false;
      let renewed: (ours: boolean) => void = () => undefined;
      const queue = new InMemoryTransactionQueue();
      pusher = new TransactionPusher({
        queue,
        client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
        registrations: [registration('chat', `${url}/`)],
        mayPush: () => mine,
        untilMayPush: () => new Promise<boolean>((resolve) => (renewed = resolve)),
      });
      await pusher.pushEvent('chat', event(1));
      await pusher.idle();
      expect(as.requests).toHaveLength(0);
      mine = true;
      renewed(true);
      await new Promise((resolve) => setImmediate(resolve));
      await pusher.idle();
      expect(as.requests.flatMap((r) => (r.body as { events: Array<{ event_id: string }> }).events.map((e) => e.event_id))).toEqual(['$e1']);
    } finally {
      jest.useRealTimers();
    }
  });

  // Issue 12: with several chat-sync replicas, only the one holding an AS's lease pushes to it.
  it('pushes nothing to an AS this process may not push to, and resumes the queued transaction when it may', async () => {
    let mine = false;
    const queue = new InMemoryTransactionQueue();
    pusher = new TransactionPusher({
      queue,
      client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
      registrations: [registration('chat', `${url}/`)],
      backoff: { initialDelayMs: 5, maxDelayMs: 40 },
      mayPush: () => mine,
    });
    await queue.enqueue('chat', { kind: 'event', event: event(1) });
    pusher.start();
    await pusher.pushEvent('chat', event(2));
    await pusher.idle();
    expect(as.requests).toHaveLength(0);
    mine = true;
    pusher.wake('chat');
    await pusher.idle();
    expect(as.requests.flatMap((r) => (r.body as { events: Array<{ event_id: string }> }).events.map((e) => e.event_id))).toEqual(['$e1', '$e2']);
  });

  // chaos-dup: with elastic chat-sync replicas the AS's lease moves; if it was given back while the old owner's request
  // was still on its way, the new owner sent the same transaction and a newer one first, and the late old request (same
  // txnId as an earlier one) was taken again by an AS remembering only its last txnId (matrix-appservice does so).
  it('gives an AS back only once its request in flight is answered, so no older transaction lands after a newer one', async () => {
    const queue = new InMemoryTransactionQueue();
    let oldOwns = true;
    let newOwns = false;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let oldRequestsStarted = 0;
    const slowFetch: typeof fetch = async (input, init) => {
      oldRequestsStarted++;
      await gate; // the old owner stalls before its request is out
      return fetch(input, init);
    };
    const oldOwner = new TransactionPusher({ queue, client: new AppServiceClient({ requestTimeoutMs: 5_000, fetch: slowFetch }), registrations: [registration('chat', url)], mayPush: () => oldOwns });
    const newOwner = new TransactionPusher({ queue, client: new AppServiceClient({ requestTimeoutMs: 5_000 }), registrations: [registration('chat', url)], mayPush: () => newOwns });
    pusher = newOwner;
    try {
      await oldOwner.pushEvent('chat', event(1));
      while (oldRequestsStarted === 0) await new Promise((r) => setTimeout(r, 5));
      // The lease moves (rebalance): the old owner may no longer push; the new owner starts once it is given back.
      oldOwns = false;
      const handedOver = oldOwner.release('chat').then(() => {
        newOwns = true;
        newOwner.wake('chat');
      });
      // Given back too early, the new owner would send txn 1 and txn 2 meanwhile (it sends whatever is queued).
      await newOwner.pushEvent('chat', event(2));
      await new Promise((r) => setTimeout(r, 300));
      expect(as.requests).toHaveLength(0); // not given back while the old request is on its way
      openGate();
      await handedOver;
      await newOwner.idle();
      // Arrival order at the AS: txn 1 (perhaps again, right after itself), then txn 2; never 1 after 2.
      const arrivals = as.requests.map((r) => r.url.split('/transactions/')[1]!.split('?')[0]);
      expect(arrivals.filter((txnId, i) => txnId !== arrivals[i - 1])).toEqual(['1', '2']);
    } finally {
      openGate();
      await oldOwner.stop();
    }
  });

  // Issue 12, found by the long chaos run: a store outage under delivery rejected the drain loop's promise, which
  // nothing awaited, and the unhandled rejection ended the chat-sync process.
  it('rides out a store outage under delivery (no unhandled rejection), reports it, and delivers once the store is back', async () => {
    const queue = new InMemoryTransactionQueue();
    let storeDown = true;
    const flaky = new Proxy(queue, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (storeDown && key === 'openTransaction' ? Promise.reject(new Error('store unreachable')) : (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
    const storeFailures: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      pusher = new TransactionPusher({
        queue: flaky,
        client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
        registrations: [registration('chat', `${url}/`)],
        backoff: { initialDelayMs: 5, maxDelayMs: 40 },
        onStoreFailure: (id, err) => storeFailures.push(`${id}: ${(err as Error).message}`),
      });
      await queue.enqueue('chat', { kind: 'event', event: event(1) });
      pusher.start();
      await pusher.idle();
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      expect(storeFailures[0]).toBe('chat: store unreachable');
      storeDown = false;
      for (let i = 0; i < 100 && as.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await pusher.idle();
      expect(as.requests.flatMap((r) => (r.body as { events: Array<{ event_id: string }> }).events.map((e) => e.event_id))).toEqual(['$e1']);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('PUTs the transaction with the hs_token as a Bearer header and nothing in the query', async () => {
    const p = makePusher([registration('chat', `${url}/base/`)]);
    await p.pushEvent('chat', event(1));
    await p.idle();
    expect(as.requests).toHaveLength(1);
    const [request] = as.requests;
    expect(request.method).toBe('PUT');
    expect(request.url).toBe('/base/_matrix/app/v1/transactions/1');
    expect(request.authorization).toBe('Bearer hs-chat');
    expect(request.body).toEqual({ events: [event(1)] });
  });

  it('legacy token placement (issue 15): a registration with legacyQueryAuth gets ?access_token= and the header, on pushes, user queries and pings', async () => {
    const legacy = { ...registration('old', `${url}/base`), legacyQueryAuth: true, hsToken: 'hs old&=' };
    const p = makePusher([legacy]);
    await p.pushEvent('old', event(1));
    await p.idle();
    const client = new AppServiceClient({ requestTimeoutMs: 2_000 });
    await client.queryUser(legacy, '@x:hs.test');
    await client.ping(legacy, 'p1');
    expect(as.requests.map((r) => r.url)).toEqual([
      '/base/_matrix/app/v1/transactions/1?access_token=hs%20old%26%3D',
      `/base/_matrix/app/v1/users/${encodeURIComponent('@x:hs.test')}?access_token=hs%20old%26%3D`,
      '/base/_matrix/app/v1/ping?access_token=hs%20old%26%3D',
    ]);
    expect(as.requests.every((r) => r.authorization === 'Bearer hs old&=')).toBe(true);
  });

  it('sends ephemeral events under both names only to services that receive them', async () => {
    const queue = new InMemoryTransactionQueue();
    const p = makePusher([registration('eph', url, true), registration('plain', url)], queue);
    await p.pushEphemeral('plain', { type: 'm.typing' });
    await queue.enqueue('eph', { kind: 'ephemeral', event: { type: 'm.typing', room_id: '!r:hs.test', content: { user_ids: [] } } });
    await queue.enqueue('eph', { kind: 'event', event: event(1) });
    p.start();
    await p.idle();
    expect(as.requests).toHaveLength(1);
    expect(as.requests[0].authorization).toBe('Bearer hs-eph');
    expect(as.requests[0].body).toEqual({
      events: [event(1)],
      ephemeral: [{ type: 'm.typing', room_id: '!r:hs.test', content: { user_ids: [] } }],
      'de.sorunome.msc2409.ephemeral': [{ type: 'm.typing', room_id: '!r:hs.test', content: { user_ids: [] } }],
    });
  });

  it('sends to-device messages (MSC2409 name) only to services that receive ephemeral events (issue 13)', async () => {
    const queue = new InMemoryTransactionQueue();
    const p = makePusher([registration('eph', url, true), registration('plain', url)], queue);
    const message = { type: 'm.room.encrypted', sender: '@a:remote.test', content: {}, to_user_id: '@b:hs.test', to_device_id: 'D' };
    await p.push('plain', { kind: 'to_device', event: message });
    await p.push('eph', { kind: 'to_device', event: message });
    await p.idle();
    expect(as.requests).toHaveLength(1);
    expect(as.requests[0].body).toEqual({ events: [], ephemeral: [], 'de.sorunome.msc2409.ephemeral': [], 'de.sorunome.msc2409.to_device': [message] });
  });

  it('retries a failed transaction with the same txnId and body, then moves on', async () => {
    let calls = 0;
    as.respond = () => (++calls <= 3 ? 'error' : 'ok');
    const p = makePusher([registration('chat', url)], undefined, 2);
    for (const n of [1, 2, 3]) await p.pushEvent('chat', event(n));
    await p.idle();
    const urls = as.requests.map((r) => r.url);
    expect(urls).toEqual(['1', '1', '1', '1', '2'].map((id) => `/_matrix/app/v1/transactions/${id}`));
    expect(new Set(as.requests.slice(0, 4).map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(failures.map((f) => [f.txnId, f.attempt])).toEqual([['1', 1], ['1', 2], ['1', 3]]);
    expect(failures[0].error.message).toContain('answered 500 (M_UNKNOWN boom)');
  });

  it('tells its observer of each accepted transaction with the attempts it took (issue 15: delivery resumed), and a throwing observer stalls nothing', async () => {
    let calls = 0;
    as.respond = () => (++calls <= 2 ? { status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Bad token supplied' } } : 'ok');
    const delivered: DeliverySuccess[] = [];
    pusher = new TransactionPusher({
      queue: new InMemoryTransactionQueue(),
      client: new AppServiceClient({ requestTimeoutMs: 2_000 }),
      registrations: [registration('chat', url)],
      backoff: { initialDelayMs: 5, maxDelayMs: 10 },
      limits: { maxEvents: 1, maxEphemeral: 100 },
      onDeliveryFailure: () => {
        throw new Error('observer broke');
      },
      onDelivered: (success) => delivered.push(success),
    });
    for (const n of [1, 2]) await pusher.pushEvent('chat', event(n));
    await pusher.idle();
    expect(delivered).toEqual([
      { appServiceId: 'chat', txnId: '1', attempts: 3, durationMs: expect.any(Number), events: 1, ephemeral: 0 },
      { appServiceId: 'chat', txnId: '2', attempts: 1, durationMs: expect.any(Number), events: 1, ephemeral: 0 },
    ]);
  });

  it('backs off exponentially, capped', async () => {
    as.respond = () => 'drop';
    const p = makePusher([registration('chat', url)]);
    await p.pushEvent('chat', event(1));
    await waitUntil(() => failures.length >= 6);
    const delays = failures.slice(0, 6).map((f) => f.retryInMs);
    expect(delays[0]).toBeGreaterThanOrEqual(3);
    expect(delays[0]).toBeLessThanOrEqual(5);
    expect(delays[3]).toBeGreaterThanOrEqual(20);
    expect(delays.every((d) => d <= 40)).toBe(true);
  });

  it('after the AS is down for a while, every event arrives exactly once, in order', async () => {
    let down = true;
    as.respond = () => (down ? 'drop' : 'ok');
    const p = makePusher([registration('chat', url)], undefined, 7);
    const pushing = (async () => {
      for (let n = 1; n <= 50; n++) await p.pushEvent('chat', event(n));
    })();
    await waitUntil(() => failures.length >= 4);
    down = false;
    await pushing;
    await p.idle();
    const delivered = as.acceptedTransactions().flatMap((r) => r.body.events.map((e: { event_id: string }) => e.event_id));
    expect(delivered).toEqual(Array.from({ length: 50 }, (_, i) => `$e${i + 1}`));
    const txnIds = as.acceptedTransactions().map((r) => Number(r.url.split('/').pop()));
    expect(txnIds).toEqual([...txnIds].sort((a, b) => a - b));
  });

  it('keeps one transaction in flight per AS, services in parallel', async () => {
    as.delayMs = 20;
    const p = makePusher([registration('one', url), registration('two', url)], undefined, 1);
    await Promise.all([1, 2, 3].flatMap((n) => [p.pushEvent('one', event(n)), p.pushEvent('two', event(n))]));
    await p.idle();
    expect(as.requests).toHaveLength(6);
    expect(as.maxInFlight).toBe(2);
    for (const token of ['Bearer hs-one', 'Bearer hs-two']) {
      expect(as.requests.filter((r) => r.authorization === token).map((r) => r.body.events[0].event_id)).toEqual(['$e1', '$e2', '$e3']);
    }
  });

  // Issue 19 (p99 received → pushed): the bus consumer hands the pusher a run of events within one turn of the event
  // loop; the first used to go alone and the rest after its answer (12–14 pushes per 50 events in the load run).
  it('issue 19: events queued in one burst (one after the other on promise continuations) while the pusher is idle go in ONE transaction', async () => {
    const p = makePusher([registration('chat', url)]);
    for (let n = 1; n <= 5; n++) await p.pushEvent('chat', event(n));
    await p.idle();
    expect(as.requests.map((r) => r.body.events.map((e: { event_id: string }) => e.event_id))).toEqual([['$e1', '$e2', '$e3', '$e4', '$e5']]);
  });

  it('issue 19: events queued while a push is in flight go in the next ONE transaction, sent once the first is answered', async () => {
    let answer!: () => void;
    as.hold = new Promise<void>((resolve) => (answer = resolve));
    const p = makePusher([registration('chat', url)]);
    await p.pushEvent('chat', event(1));
    await waitUntil(() => as.requests.length === 1);
    for (let n = 2; n <= 6; n++) await p.pushEvent('chat', event(n));
    expect(as.requests).toHaveLength(1);
    as.hold = undefined;
    answer();
    await p.idle();
    expect(as.requests.map((r) => r.body.events.map((e: { event_id: string }) => e.event_id))).toEqual([['$e1'], ['$e2', '$e3', '$e4', '$e5', '$e6']]);
    expect(as.maxInFlight).toBe(1);
  });

  it('sends nothing to a service whose url is null', async () => {
    const p = makePusher([registration('silent', null)]);
    await p.pushEvent('silent', event(1));
    await p.idle();
    expect(as.requests).toHaveLength(0);
  });

  it('resumes the open transaction, same txnId, after a restart', async () => {
    as.respond = () => 'error';
    const queue = new InMemoryTransactionQueue();
    const first = makePusher([registration('chat', url)], queue);
    await first.pushEvent('chat', event(1));
    await waitUntil(() => failures.length >= 1);
    await first.stop();
    await queue.enqueue('chat', { kind: 'event', event: event(2) });
    as.respond = () => 'ok';
    const second = makePusher([registration('chat', url)], queue);
    second.start();
    await second.idle();
    const accepted = as.acceptedTransactions();
    expect(accepted.map((r) => [r.url.split('/').pop(), r.body.events.map((e: { event_id: string }) => e.event_id)])).toEqual([
      ['1', ['$e1']],
      ['2', ['$e2']],
    ]);
    expect(queue.pendingCount('chat')).toBe(0);
  });
});

describe('AppServiceClient queries', () => {
  let as: FakeAppService;
  let url: string;
  const client = new AppServiceClient({ requestTimeoutMs: 2_000 });
  beforeAll(async () => {
    as = new FakeAppService();
    url = await as.start();
  });
  afterAll(() => as.stop());

  it.each([
    [200, true],
    [404, false],
  ])('user and alias queries: %i → %s', async (status, exists) => {
    as.respond = () => ({ status, body: status === 404 ? { errcode: 'M_NOT_FOUND' } : {} });
    const reg = registration('chat', url);
    await expect(client.queryUser(reg, '@_chat_a:hs.test')).resolves.toBe(exists);
    await expect(client.queryRoomAlias(reg, '#_chat_a:hs.test')).resolves.toBe(exists);
    const [user, alias] = as.requests.slice(-2);
    expect(user).toMatchObject({ method: 'GET', url: '/_matrix/app/v1/users/%40_chat_a%3Ahs.test', authorization: 'Bearer hs-chat' });
    expect(alias).toMatchObject({ method: 'GET', url: '/_matrix/app/v1/rooms/%23_chat_a%3Ahs.test' });
  });

  it('a query failing otherwise is an error with status and errcode', async () => {
    as.respond = () => ({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'bad token' } });
    await expect(client.queryUser(registration('chat', url), '@a:hs.test')).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('what a refusing AS says is bounded before it reaches logs, audit and metrics (issue 15)', async () => {
    as.respond = () => ({ status: 403, body: { errcode: `M_${'X'.repeat(500)}`, error: 'e'.repeat(10_000) } });
    const err = (await client.queryUser(registration('chat', url), '@a:hs.test').catch((e: unknown) => e)) as AppServiceRequestError;
    expect(err.errcode).toHaveLength(64);
    expect(err.message.length).toBeLessThan(500);
  });

  it('pings with the transaction ID', async () => {
    as.respond = () => 'ok';
    const result = await client.ping(registration('chat', url), 'meow');
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(as.requests.at(-1)).toMatchObject({ method: 'POST', url: '/_matrix/app/v1/ping', body: { transaction_id: 'meow' }, authorization: 'Bearer hs-chat' });
  });

  it('refuses to contact a service without url', async () => {
    await expect(client.ping(registration('silent', null))).rejects.toThrow('has no url');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
