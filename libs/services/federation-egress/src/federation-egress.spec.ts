import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, type BusTopology, type EgressEntry, type RoomLogEntry } from '@fedgate/bus';
import { FederationHttpClient, FederationHttpError } from '@fedgate/federation-client';
import type { JsonObject, Pdu } from '@fedgate/protocol';
import { openSqliteStore, stateTupleKey, type Store } from '@fedgate/store';
import { createTestCa, type TestCertificateAuthority } from '@fedgate/testing';
import { RecordingRemote } from './__fixtures__/recording-remote';
import { deliveringClient, testEgressSettings } from './__fixtures__/test-settings';
import type { EgressSettings } from './egress-settings';
import { FederationEgress } from './federation-egress';
import { registerQueueDepthGauges } from './queue-depth-metrics';
import { Registry } from 'prom-client';

jest.setTimeout(30_000);

const OWN = 'own.test';
const silent = process.env.EGRESS_TEST_LOG ? { debug: console.log, info: console.log, warn: console.log, error: console.log } : { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const baseSettings: EgressSettings = testEgressSettings;

/** Waits for a condition the system reaches by itself (no timing is asserted; jest's timeout is the bound). */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for: ${what}`);
}

interface Harness {
  store: Store;
  bus: EmbeddedBus;
  topology: BusTopology;
  egress: FederationEgress;
  client: FederationHttpClient;
  close(): Promise<void>;
}

/**
 * Records when each transaction is prepared (saved) and when its request reaches the network: only after turns of the
 * event loop (address lookup on libuv's threads, then the socket write), as the HTTPS transport's does.
 */
function preparedAndOnTheWire(h: { store: Store }): { timeline: string[]; client: { putJson: (destination: string) => Promise<{ status: number; body: unknown }> } } {
  const timeline: string[] = [];
  const beginTransaction = h.store.egressQueue.beginTransaction.bind(h.store.egressQueue);
  jest.spyOn(h.store.egressQueue, 'beginTransaction').mockImplementation(async (txn) => {
    timeline.push(`prepared ${txn.destination}`);
    return beginTransaction(txn);
  });
  const client = {
    putJson: async (destination: string) => {
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      timeline.push(`on the wire ${destination}`);
      await new Promise((resolve) => setImmediate(resolve));
      return { status: 200, body: { pdus: {} } };
    },
  };
  return { timeline, client };
}

/**
 * Starts egress on `h` with `preparedAndOnTheWire`'s client, runs `queue` (work queued before is resumed at start),
 * waits until `count` requests went out, and answers where the first of them came among the prepared transactions.
 */
async function sendAllAndWatch(h: Harness, count: number, queue?: () => Promise<void>): Promise<{ firstOnTheWire: number; prepared: number[] }> {
  const { timeline, client } = preparedAndOnTheWire(h);
  const egress = new FederationEgress({ serverName: OWN, store: h.store, bus: h.bus, topology: h.topology, client: client as never, settings: baseSettings, logger: silent });
  await egress.start();
  try {
    await queue?.();
    await until(() => timeline.filter((t) => t.startsWith('on the wire')).length === count, 'all sent');
    await until(() => egress.idle, 'egress idle');
    return { firstOnTheWire: timeline.findIndex((t) => t.startsWith('on the wire')), prepared: timeline.flatMap((t, i) => (t.startsWith('prepared') ? [i] : [])) };
  } finally {
    await egress.stop();
  }
}

describe('FederationEgress (SQLite store, EmbeddedBus, loopback HTTPS remote)', () => {
  let ca: TestCertificateAuthority;
  let dir: string;
  let remote: RecordingRemote;
  let harness: Harness | undefined;
  let prefixCounter = 0;
  let prefix = '';

  beforeAll(() => {
    ca = createTestCa('egress test CA');
  });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-egress-'));
    prefix = `eg${process.pid}x${prefixCounter++}`;
    remote = new RecordingRemote(ca);
    await remote.start();
  });

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await remote.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(settings: Partial<EgressSettings> = {}, options: { start?: boolean; allowLoopback?: boolean; onTransaction?: (destination: string, outcome: string) => void } = {}): Promise<Harness> {
    const file = path.join(dir, 'fedgate.sqlite');
    const topology = busTopology({ prefix, roomPartitions: 4, destinationPartitions: 4 });
    const store = openSqliteStore(file);
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 10 });
    await bus.start();
    const client = new FederationHttpClient({
      ca: ca.certPem,
      addressPolicy: options.allowLoopback === false ? {} : { allow: ['127.0.0.0/8'] },
      signRequest: (method, uri, destination) => `X-Matrix origin="${OWN}",destination="${destination}",key="ed25519:t",sig="${method}${uri.length}"`,
    });
    const egress = new FederationEgress({ serverName: OWN, store, bus, topology, client, settings: { ...baseSettings, ...settings }, logger: silent, onTransaction: options.onTransaction });
    if (options.start !== false) await egress.start();
    const h: Harness = {
      store,
      bus,
      topology,
      egress,
      client,
      close: async () => {
        await egress.stop();
        await bus.close();
        await client.close();
        await store.close();
      },
    };
    harness = h;
    return h;
  }

  function pduOf(roomId: string, eventId: string, depth: number): Pdu {
    return {
      event_id: eventId,
      room_id: roomId,
      sender: `@alice:${OWN}`,
      origin_server_ts: 1_700_000_000_000 + depth,
      type: 'm.room.message',
      content: { body: `message ${depth}` },
      prev_events: [],
      auth_events: [],
      depth,
      hashes: { sha256: 'aGFzaA' },
      signatures: { [OWN]: { 'ed25519:t': 'c2ln' } },
    };
  }

  async function storeEvents(store: Store, roomId: string, count: number, from = 1): Promise<string[]> {
    const ids: string[] = [];
    for (let depth = from; depth < from + count; depth++) {
      const eventId = `${eventPrefix(roomId)}${depth}`;
      await store.events.append({
        eventId,
        roomId,
        type: 'm.room.message',
        depth,
        prevEventIds: [],
        authEventIds: [],
        pdu: pduOf(roomId, eventId, depth),
        status: 'accepted',
        outlier: false,
        receivedTs: 1,
      });
      ids.push(eventId);
    }
    return ids;
  }

  async function publishLocal(h: Harness, roomId: string, eventIds: string[], joinedServers: string[]): Promise<void> {
    for (const eventId of eventIds) {
      const stored = await h.store.events.get(eventId);
      const entry: RoomLogEntry = {
        eventId,
        roomId,
        outcome: 'accepted',
        local: true,
        event: stored!.pdu as unknown as JsonObject,
        stateDelta: {},
        joinedServers,
      };
      await h.bus.publish(h.topology.roomLog.subjectFor(roomId), entry, { messageId: eventId });
    }
  }

  async function enqueueDirect(h: Harness, destination: string, entries: EgressEntry[]): Promise<void> {
    for (const e of entries) {
      const key = e.kind === 'pdu' ? e.eventId : `edu:${e.eduId}`;
      await h.store.egressQueue.append(destination, key, e as unknown as JsonObject, e.enqueuedAt);
    }
  }

  const eventPrefix = (roomId: string) => `$${roomId.slice(1, roomId.indexOf(':'))}-`;
  const countById = (ids: string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

  it('splits 60 queued PDUs into transactions of 50 and 10, in queue order, signed', async () => {
    const h = await open({}, { start: false });
    const ids = await storeEvents(h.store, '!batch:own.test', 60);
    await enqueueDirect(
      h,
      remote.serverName,
      ids.map((eventId) => ({ kind: 'pdu', destination: remote.serverName, roomId: '!batch:own.test', eventId, enqueuedAt: Date.now() })),
    );
    await h.egress.start();
    await until(() => remote.deliveredEventIds().length === 60, '60 PDUs delivered');
    expect(remote.received.map((t) => t.body.pdus.length)).toEqual([50, 10]);
    expect(remote.deliveredEventIds()).toEqual(ids);
    expect(remote.received[0].body.origin).toBe(OWN);
    expect(remote.received[0].authorization).toMatch(/^X-Matrix origin="own.test",destination="127\.0\.0\.1:\d+"/);
    await until(async () => (await h.store.egressQueue.count(remote.serverName, 0)) === 0, 'queue emptied');
    const audit = await h.store.audit.query({ direction: 'out', destination: remote.serverName });
    expect(audit.map((a) => [a.outcome, a.status, a.pduCount, a.eduCount]).reverse()).toEqual([
      ['ok', 200, 50, 0],
      ['ok', 200, 10, 0],
    ]);
  });

  it('sends a local event to the joined servers (not itself) in room order, and leaves remote events alone', async () => {
    const h = await open();
    const ids = await storeEvents(h.store, '!order:own.test', 25);
    await publishLocal(h, '!order:own.test', ids, [OWN, remote.serverName]);
    const [foreign] = await storeEvents(h.store, '!order:own.test', 1, 100);
    await h.bus.publish(
      h.topology.roomLog.subjectFor('!order:own.test'),
      { eventId: foreign, roomId: '!order:own.test', outcome: 'accepted', local: false, event: {}, stateDelta: {}, joinedServers: [remote.serverName] },
      { messageId: foreign },
    );
    await until(() => remote.deliveredEventIds().length === 25, '25 PDUs delivered');
    await until(() => h.egress.idle, 'egress idle');
    expect(remote.deliveredEventIds()).toEqual(ids);
    expect(await h.store.egressQueue.destinationsWithWork()).toEqual([]);
  });

  it('retries with the same transaction ID and body until the remote takes it', async () => {
    let failuresLeft = 2;
    remote.answer = () => (failuresLeft-- > 0 ? { status: 503, body: { errcode: 'M_UNKNOWN', error: 'busy' } } : { status: 200, body: { pdus: {} } });
    // Issue 12: each answer is counted by destination and outcome (fedgate_egress_transactions_total); retry = backoff.
    const outcomes: string[] = [];
    const h = await open({}, { onTransaction: (destination, outcome) => outcomes.push(`${destination} ${outcome}`) });
    const ids = await storeEvents(h.store, '!retry:own.test', 3);
    await enqueueDirect(
      h,
      remote.serverName,
      ids.map((eventId) => ({ kind: 'pdu', destination: remote.serverName, roomId: '!retry:own.test', eventId, enqueuedAt: Date.now() })),
    );
    h.egress['sender'](remote.serverName).kick();
    await until(() => remote.received.some((t) => t.answeredStatus === 200), 'a transaction accepted');
    const first = remote.received[0];
    expect(remote.received.length).toBeGreaterThanOrEqual(3);
    for (const t of remote.received) {
      expect(t.txnId).toBe(first.txnId);
      expect(t.raw).toBe(first.raw);
    }
    // The remote has answered 200; egress records it just after.
    await until(async () => (await h.store.audit.query({ destination: remote.serverName })).length === 3, 'the accepted attempt audited');
    const audit = (await h.store.audit.query({ destination: remote.serverName })).reverse();
    expect(audit.map((a) => [a.outcome, a.status, a.reason])).toEqual([
      ['error', 503, 'M_UNKNOWN'],
      ['error', 503, 'M_UNKNOWN'],
      ['ok', 200, undefined],
    ]);
    expect(outcomes).toEqual([`${remote.serverName} retry`, `${remote.serverName} retry`, `${remote.serverName} ok`]);
    expect(await h.store.destinations.get(remote.serverName)).toMatchObject({ failures: 0, retryAt: null, inFlight: null });
  });

  it('backs off after a failure and retries at once when the server is seen up', async () => {
    let down = true;
    remote.answer = () => (down ? { status: 502, body: {} } : { status: 200, body: { pdus: {} } });
    // Backoff and poll long enough that only the server-up signal can bring the retry within the test.
    const h = await open({ backoff: { initialMs: 600_000, multiplier: 2, maxMs: 3_600_000, jitter: 0 }, wakePollMs: 600_000 });
    const ids = await storeEvents(h.store, '!wake:own.test', 2);
    await publishLocal(h, '!wake:own.test', ids, [remote.serverName]);
    await until(async () => (await h.store.destinations.get(remote.serverName)).retryAt !== null, 'backing off');
    const record = await h.store.destinations.get(remote.serverName);
    expect(record.failures).toBe(1);
    expect(record.retryAt! - Date.now()).toBeGreaterThan(60_000);
    down = false;
    await h.bus.publish(h.topology.serverUp.subject, { serverName: remote.serverName, at: Date.now() }, { messageId: `server-up:${remote.serverName}:1` });
    await until(() => remote.deliveredEventIds().length === 2, 'delivered after server-up');
    expect(remote.deliveredEventIds()).toEqual(ids);
    await until(async () => (await h.store.destinations.get(remote.serverName)).failures === 0, 'failures reset');
  });

  it('issue 19: a destination whose TLS handshake never completes does not hold the fan-out: the others are delivered, its request times out, is recorded with a reason and retried later', async () => {
    const hanging: Socket[] = [];
    const silent = createNetServer((socket) => {
      hanging.push(socket);
      socket.on('error', () => undefined);
      socket.resume(); // takes the client hello and never answers it
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const silentName = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const h = await open({ requestTimeoutMs: 500, backoff: { initialMs: 50, multiplier: 2, maxMs: 200, jitter: 0 } });
      const ids = await storeEvents(h.store, '!hang:own.test', 1);
      // The silent destination first: it is still in its handshake when the other is handed its request.
      await publishLocal(h, '!hang:own.test', ids, [OWN, silentName, remote.serverName]);
      await until(() => remote.deliveredEventIds().length === 1, 'the answering destination delivered');
      await until(async () => (await h.store.destinations.get(silentName)).failures >= 1, 'the hanging destination failed');
      const [failed] = await h.store.audit.query({ direction: 'out', destination: silentName });
      expect(failed).toMatchObject({ outcome: 'error', reason: 'TIMEOUT' });
      await until(() => hanging.length >= 2, 'the hanging destination tried again');
      expect(await h.store.egressQueue.count(silentName, 0)).toBe(1); // still queued, not dropped
      expect(remote.deliveredEventIds()).toEqual(ids); // once
    } finally {
      for (const socket of hanging) socket.destroy();
      silent.close();
    }
  });

  it('delivers every event exactly once after the remote was unreachable for a while', async () => {
    await remote.stop();
    const h = await open();
    const rooms = ['!down1:own.test', '!down2:own.test'];
    const all: string[] = [];
    for (const room of rooms) {
      const ids = await storeEvents(h.store, room, 40);
      all.push(...ids);
      await publishLocal(h, room, ids, [OWN, remote.serverName]);
    }
    await until(async () => (await h.store.audit.query({ destination: remote.serverName, outcome: 'error' })).length >= 3, 'three failed attempts');
    const failed = await h.store.audit.query({ destination: remote.serverName, outcome: 'error' });
    expect(new Set(failed.map((a) => a.reason))).toEqual(new Set(['UNREACHABLE']));
    await remote.start();
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0 && remote.deliveredEventIds().length >= 80, 'all delivered');
    const counts = countById(remote.deliveredEventIds());
    expect([...counts.keys()].sort()).toEqual([...all].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    for (const room of rooms) {
      const inRoom = remote.deliveredEventIds().filter((id) => all.indexOf(id) >= 0 && id.startsWith(eventPrefix(room)));
      expect(inRoom).toEqual(all.filter((id) => id.startsWith(eventPrefix(room))));
    }
  });

  it('loses nothing across a restart mid-queue, and resumes the in-flight transaction under its ID', async () => {
    remote.answer = () => ({ status: 500, body: { errcode: 'M_UNKNOWN', error: 'down' } });
    let h = await open();
    const ids = await storeEvents(h.store, '!restart:own.test', 70);
    await publishLocal(h, '!restart:own.test', ids, [remote.serverName]);
    await until(async () => (await h.store.egressQueue.count(remote.serverName, 0)) === 70, 'all 70 queued');
    await until(async () => (await h.store.destinations.get(remote.serverName)).inFlight !== null && remote.received.length > 0, 'one in flight');
    const inFlight = (await h.store.destinations.get(remote.serverName)).inFlight!;
    await h.close();
    harness = undefined;

    remote.answer = () => ({ status: 200, body: { pdus: {} } });
    const before = remote.received.length;
    h = await open();
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'queue drained after restart');
    expect(remote.received[before].txnId).toBe(inFlight.txnId);
    expect(remote.received[before].raw).toBe(remote.received[0].raw);
    const counts = countById(remote.deliveredEventIds());
    expect(remote.deliveredEventIds()).toEqual(ids);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  it('a saved body whose transaction is no longer in flight (a settle cut short on MongoDB) is removed by the worker started for it, which sends nothing', async () => {
    const h = await open({}, { start: false });
    await h.store.egressQueue.saveTransaction({ destination: remote.serverName, txnId: 'settled', upTo: 1, body: { pdus: [], edus: [] }, createdTs: 1 });
    expect(await h.store.egressQueue.destinationsWithWork()).toEqual([remote.serverName]);
    await h.egress.start();
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'the left body removed');
    await until(() => h.egress.idle, 'egress idle');
    expect(remote.received).toEqual([]);
  });

  it('a transaction in flight without its body (MongoDB: a death between the two writes of a begin, before any send) is rebuilt from the queue and sent under its ID', async () => {
    const h = await open({}, { start: false });
    const ids = await storeEvents(h.store, '!nobody:own.test', 3);
    await enqueueDirect(
      h,
      remote.serverName,
      ids.map((eventId) => ({ kind: 'pdu', destination: remote.serverName, roomId: '!nobody:own.test', eventId, enqueuedAt: Date.now() })),
    );
    const upTo = Math.max(...(await h.store.egressQueue.list(remote.serverName, 0, 10)).slice(0, 2).map((i) => i.position));
    await h.store.destinations.beginTransaction(remote.serverName, { txnId: 'begun-then-died', upTo });
    await h.egress.start();
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'queue drained');
    await until(() => h.egress.idle, 'egress idle');
    expect(remote.received[0].txnId).toBe('begun-then-died');
    expect(remote.deliveredEventIds()).toEqual(ids);
  });

  it('drops typing notifications that are stale or superseded and presence superseded by a newer one, and records why', async () => {
    const h = await open({}, { start: false });
    const now = Date.now();
    const d = remote.serverName;
    const typing = (eduId: string, userId: string, typingNow: boolean, at: number): EgressEntry => ({
      kind: 'edu',
      destination: d,
      eduType: 'm.typing',
      eduId,
      content: { room_id: '!t:own.test', user_id: userId, typing: typingNow },
      enqueuedAt: at,
    });
    const presence = (eduId: string, userId: string, state: string): EgressEntry => ({
      kind: 'edu',
      destination: d,
      eduType: 'm.presence',
      eduId,
      content: { push: [{ user_id: userId, presence: state, last_active_ago: 0 }] },
      enqueuedAt: now,
    });
    await enqueueDirect(h, d, [
      typing('old-typing', '@bob:own.test', true, now - 60_000),
      typing('carol-1', '@carol:own.test', true, now),
      presence('p1', '@bob:own.test', 'online'),
      typing('carol-2', '@carol:own.test', false, now),
      presence('p2', '@bob:own.test', 'unavailable'),
      typing('dave', '@dave:own.test', true, now),
    ]);
    await h.egress.start();
    await until(() => remote.received.length === 1, 'one transaction');
    expect(remote.received[0].body.edus).toEqual([
      { edu_type: 'm.typing', content: { room_id: '!t:own.test', user_id: '@carol:own.test', typing: false } },
      { edu_type: 'm.presence', content: { push: [{ user_id: '@bob:own.test', presence: 'unavailable', last_active_ago: 0 }] } },
      { edu_type: 'm.typing', content: { room_id: '!t:own.test', user_id: '@dave:own.test', typing: true } },
    ]);
    const [drop] = await h.store.audit.query({ destination: d, reason: 'stale_edu' });
    expect(drop.details).toEqual({
      dropped: [
        { eduId: 'old-typing', eduType: 'm.typing', why: 'expired' },
        { eduId: 'carol-1', eduType: 'm.typing', why: 'superseded' },
        { eduId: 'p1', eduType: 'm.presence', why: 'superseded' },
      ],
    });
  });

  it('issue 19: the per-destination senders of a fan-out are let go once their queues are empty; one backing off keeps its sender until it delivers', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 60 }, (_, i) => `d${i}.test`);
    let downAnswers = 2;
    const delivered: string[] = [];
    const client = {
      putJson: async (destination: string) => {
        await new Promise((resolve) => setImmediate(resolve));
        if (destination === 'down.test' && downAnswers-- > 0) throw new FederationHttpError(502, {}, destination);
        delivered.push(destination);
        return { status: 200, body: { pdus: {} } };
      },
    };
    const egress = new FederationEgress({ serverName: OWN, store: h.store, bus: h.bus, topology: h.topology, client: client as never, settings: { ...baseSettings, backoff: { initialMs: 50, multiplier: 2, maxMs: 200, jitter: 0 } }, logger: silent });
    await egress.start();
    try {
      const [eventId] = await storeEvents(h.store, '!senders:own.test', 1);
      await publishLocal(h, '!senders:own.test', [eventId!], [OWN, 'down.test', ...destinations]);
      await until(() => destinations.every((d) => delivered.includes(d)), 'delivered to the answering destinations');
      await until(async () => (await h.store.destinations.get('down.test')).failures >= 1, 'down.test backing off');
      await until(() => egress.activeSenders === 1, 'only the backing-off sender left');
      await until(() => delivered.includes('down.test'), 'down.test delivered after its backoff');
      await until(() => egress.activeSenders === 0, 'no sender left');
      // A later event to the same destinations is sent as before (a sender is made again).
      const [next] = await storeEvents(h.store, '!senders:own.test', 1, 2);
      await publishLocal(h, '!senders:own.test', [next!], [OWN, 'd0.test']);
      await until(() => delivered.filter((d) => d === 'd0.test').length === 2, 'the next event delivered');
      await until(() => egress.activeSenders === 0, 'let go again');
    } finally {
      await egress.stop();
    }
  });

  it('issue 19: hands a local event to all its destinations in one bus publish (one commit), each destination once', async () => {
    const h = await open();
    const others = Array.from({ length: 20 }, (_, i) => `unreachable${i}.invalid`);
    const [eventId] = await storeEvents(h.store, '!fan:own.test', 1);
    const publishBatch = jest.spyOn(h.bus, 'publishBatch');
    const publish = jest.spyOn(h.bus, 'publish');
    await publishLocal(h, '!fan:own.test', [eventId!], [OWN, remote.serverName, ...others]);
    await until(() => remote.deliveredEventIds().length === 1, 'delivered to the reachable server');
    const egressCalls = publishBatch.mock.calls.filter(([items]) => items.some((i) => i.subject.includes('.egress.dest')));
    expect(egressCalls).toHaveLength(1);
    expect(new Set(egressCalls[0]![0].map((i) => (i.data as EgressEntry).destination))).toEqual(new Set([remote.serverName, ...others]));
    expect(publish.mock.calls.filter(([subject]) => subject.includes('.egress.dest'))).toHaveLength(0);
  });

  it('issue 19: a fan-out to 1,000 is published in chunks and the first destination is queued before the last chunk is published (one publish of all held every destination back)', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 1_000 }, (_, i) => `chunk${String(i).padStart(4, '0')}.test`);
    const [eventId] = await storeEvents(h.store, '!chunks:own.test', 1);
    const timeline: string[] = [];
    const publishBatch = h.bus.publishBatch.bind(h.bus);
    jest.spyOn(h.bus, 'publishBatch').mockImplementation(async (items) => {
      const results = await publishBatch(items);
      if (items.some((i) => i.subject.includes('.egress.dest'))) timeline.push(`published ${items.length}`);
      return results;
    });
    const append = h.store.egressQueue.append.bind(h.store.egressQueue);
    jest.spyOn(h.store.egressQueue, 'append').mockImplementation(async (destination, ...rest) => {
      timeline.push(`queued ${destination}`);
      return append(destination, ...rest);
    });
    let delivered = 0;
    const client = {
      putJson: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        delivered++;
        return { status: 200, body: { pdus: {} } };
      },
    };
    const egress = new FederationEgress({ serverName: OWN, store: h.store, bus: h.bus, topology: h.topology, client: client as never, settings: baseSettings, logger: silent });
    await egress.start();
    try {
      await publishLocal(h, '!chunks:own.test', [eventId!], [OWN, ...destinations]);
      await until(() => delivered === destinations.length, 'all delivered');
      const publishes = timeline.filter((t) => t.startsWith('published'));
      expect(publishes.length).toBeGreaterThan(1);
      expect(publishes.reduce((n, t) => n + Number(t.split(' ')[1]), 0)).toBe(destinations.length);
      expect(timeline.findIndex((t) => t.startsWith('queued'))).toBeLessThan(timeline.findLastIndex((t) => t.startsWith('published')));
      expect(timeline.filter((t) => t.startsWith('queued'))).toHaveLength(destinations.length);
    } finally {
      await egress.stop();
    }
  });

  it('issue 19: a fan-out whose room-log message dies between two of its publishes delivers to every destination once when redelivered', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 150 }, (_, i) => `later${String(i).padStart(3, '0')}.test`);
    const [eventId] = await storeEvents(h.store, '!chunkcrash:own.test', 1);
    const publishBatch = h.bus.publishBatch.bind(h.bus);
    let egressPublishes = 0;
    jest.spyOn(h.bus, 'publishBatch').mockImplementation(async (items) => {
      if (items.some((i) => i.subject.includes('.egress.dest')) && ++egressPublishes === 2) throw new Error('process died between two publishes (simulated)');
      return publishBatch(items);
    });
    const { client, delivered } = deliveringClient();
    const egress = new FederationEgress({ serverName: OWN, store: h.store, bus: h.bus, topology: h.topology, client: client as never, settings: baseSettings, logger: silent });
    await egress.start();
    try {
      await publishLocal(h, '!chunkcrash:own.test', [eventId!], [OWN, ...destinations]);
      await until(() => new Set(delivered).size === destinations.length, 'every destination delivered');
      await until(() => egress.idle, 'egress idle');
      expect(egressPublishes).toBeGreaterThan(3);
      expect([...countById(delivered).values()].every((n) => n === 1)).toBe(true);
      expect(delivered.sort()).toEqual(destinations);
    } finally {
      await egress.stop();
    }
  });

  it('issue 19: a room-log entry whose destinations were published in one commit but which was not acked (a crash between) queues each destination once when redelivered', async () => {
    const h = await open();
    const other = 'unreachable.invalid';
    const [eventId] = await storeEvents(h.store, '!fancrash:own.test', 1);
    const publishBatch = h.bus.publishBatch.bind(h.bus);
    let failed = false;
    jest.spyOn(h.bus, 'publishBatch').mockImplementation(async (items) => {
      const results = await publishBatch(items);
      if (!failed && items.some((i) => i.subject.includes('.egress.dest'))) {
        failed = true;
        throw new Error('process died after the publish, before the ack (simulated)');
      }
      return results;
    });
    await publishLocal(h, '!fancrash:own.test', [eventId!], [OWN, remote.serverName, other]);
    await until(() => remote.deliveredEventIds().length === 1, 'delivered');
    await until(async () => (await h.store.egressQueue.count(other, 0)) === 1, 'queued for the unreachable server');
    expect(failed).toBe(true);
    const dest = h.bus.readStream<EgressEntry>(h.topology.streams.egress.name, `${prefix}.egress.dest.>`).filter((m) => m.data.kind === 'pdu' && m.data.eventId === eventId);
    expect(dest.map((m) => m.data.destination).sort()).toEqual([remote.serverName, other].sort());
    expect(remote.deliveredEventIds()).toEqual([eventId]);
  });

  it('issue 19: the first destination of a fan-out to 200 is sent to before the last one is queued (queueing yields to network I/O), never between an item queued and its bus message settled', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 200 }, (_, i) => `fan${String(i).padStart(3, '0')}.test`);
    const [eventId] = await storeEvents(h.store, '!wide:own.test', 1);
    const timeline: string[] = [];
    const append = h.store.egressQueue.append.bind(h.store.egressQueue);
    jest.spyOn(h.store.egressQueue, 'append').mockImplementation(async (destination, ...rest) => {
      timeline.push(`queued ${destination}`);
      return append(destination, ...rest);
    });
    // A remote answers only after the event loop turned (as any socket does): a queue that never yields sends nothing until it is done.
    const client = {
      putJson: async (destination: string) => {
        await new Promise((resolve) => setImmediate(resolve));
        timeline.push(`delivered ${destination}`);
        return { status: 200, body: { pdus: {} } };
      },
    };
    // Each destination's bus message is settled right after its item is queued, with no turn of the loop between:
    // a transaction finished in between and a crash before the settle would queue (and send) the event again.
    for (const method of ['settleAndClaimNext', 'apply'] as const) {
      const original = (h.bus[method] as (...a: unknown[]) => unknown).bind(h.bus);
      jest.spyOn(h.bus, method).mockImplementation(((consumer: { durable: string }, ...rest: unknown[]) => {
        if (consumer.durable.includes('egress-dest')) timeline.push('settled');
        return original(consumer, ...rest);
      }) as never);
    }
    const egress = new FederationEgress({ serverName: OWN, store: h.store, bus: h.bus, topology: h.topology, client: client as never, settings: baseSettings, logger: silent });
    await egress.start();
    try {
      await publishLocal(h, '!wide:own.test', [eventId!], [OWN, ...destinations]);
      await until(() => timeline.filter((t) => t.startsWith('delivered')).length === destinations.length, 'all delivered');
      const firstDelivered = timeline.findIndex((t) => t.startsWith('delivered'));
      const lastQueued = timeline.findLastIndex((t) => t.startsWith('queued'));
      expect(firstDelivered).toBeLessThan(lastQueued);
      const deliveredWhileUnsettled = timeline.filter((t, i) => t.startsWith('delivered') && timeline.slice(0, i).findLast((u) => !u.startsWith('delivered'))?.startsWith('queued'));
      expect(deliveredWhileUnsettled).toEqual([]);
    } finally {
      await egress.stop();
    }
  });

  it('issue 19: a fan-out to 300 through the bus reaches the network with its first destination before the 64th transaction is prepared (queued items come a turn of the event loop apart)', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 300 }, (_, i) => `wide${String(i).padStart(3, '0')}.test`);
    const [eventId] = await storeEvents(h.store, '!lockstep:own.test', 1);
    const { firstOnTheWire, prepared } = await sendAllAndWatch(h, destinations.length, () => publishLocal(h, '!lockstep:own.test', [eventId!], [OWN, ...destinations]));
    expect(prepared).toHaveLength(destinations.length);
    expect(firstOnTheWire).toBeLessThan(prepared[63]!);
  });

  it('issue 19: resuming 300 destinations with queued work at start, the first request reaches the network before the 64th transaction is prepared (a bounded number prepare at once)', async () => {
    const h = await open({}, { start: false });
    const destinations = Array.from({ length: 300 }, (_, i) => `resume${String(i).padStart(3, '0')}.test`);
    const [eventId] = await storeEvents(h.store, '!resume:own.test', 1);
    for (const destination of destinations) {
      await enqueueDirect(h, destination, [{ kind: 'pdu', destination, roomId: '!resume:own.test', eventId: eventId!, enqueuedAt: 1 }]);
    }
    const { firstOnTheWire, prepared } = await sendAllAndWatch(h, destinations.length);
    expect(prepared).toHaveLength(destinations.length);
    expect(firstOnTheWire).toBeLessThan(prepared[63]!);
  });

  it('issue 19: a destination item queued whose bus message was not settled (a crash between the two) is queued and delivered once when redelivered', async () => {
    const h = await open();
    const [eventId] = await storeEvents(h.store, '!yieldcrash:own.test', 1);
    const append = h.store.egressQueue.append.bind(h.store.egressQueue);
    let failed = false;
    jest.spyOn(h.store.egressQueue, 'append').mockImplementation(async (...args) => {
      const result = await append(...args);
      if (!failed) {
        failed = true;
        throw new Error('process died after queueing, before the bus message was settled (simulated)');
      }
      return result;
    });
    await publishLocal(h, '!yieldcrash:own.test', [eventId!], [OWN, remote.serverName]);
    await until(() => remote.deliveredEventIds().length === 1, 'delivered');
    await until(async () => (await h.store.egressQueue.count(remote.serverName, 0)) === 0, 'queue emptied');
    await until(() => h.egress.idle, 'egress idle');
    expect(failed).toBe(true);
    expect(remote.deliveredEventIds()).toEqual([eventId]);
  });

  it('fans an outbound EDU out to the servers joined to its room', async () => {
    const h = await open();
    await h.store.rooms.setJoinedServers('!edu:own.test', [OWN, remote.serverName]);
    await h.bus.publish(
      h.topology.outboundEdu.subject,
      { eduId: 'r1', eduType: 'm.receipt', content: { '!edu:own.test': { 'm.read': {} } }, roomId: '!edu:own.test', createdAt: Date.now() },
      { messageId: 'r1' },
    );
    await until(() => remote.received.length === 1, 'receipt delivered');
    expect(remote.received[0].body.edus).toEqual([{ edu_type: 'm.receipt', content: { '!edu:own.test': { 'm.read': {} } } }]);
  });

  it('after a long outage sends only the forward extremities of the rooms it missed, and records what it skipped', async () => {
    await remote.stop();
    // Long backoff: the only retry is the server-up signal sent once everything is queued.
    const h = await open({ catchUpQueueLimit: 20, backoff: { initialMs: 600_000, multiplier: 2, maxMs: 3_600_000, jitter: 0 }, wakePollMs: 600_000 });
    const a = await storeEvents(h.store, '!catchA:own.test', 30);
    const b = await storeEvents(h.store, '!catchB:own.test', 10);
    await h.store.rooms.updateForwardExtremities('!catchA:own.test', { add: [a[29]], remove: [] });
    await h.store.rooms.updateForwardExtremities('!catchB:own.test', { add: [b[9]], remove: [] });
    await publishLocal(h, '!catchA:own.test', a, [remote.serverName]);
    await publishLocal(h, '!catchB:own.test', b, [remote.serverName]);
    await until(async () => (await h.store.egressQueue.count(remote.serverName, 0)) === 40, 'all queued');
    await until(async () => (await h.store.destinations.get(remote.serverName)).failures >= 1, 'failed once');
    // The first transaction was saved before the outage was known; it is still sent as it was.
    const inFlight = await h.store.egressQueue.getTransaction(remote.serverName, (await h.store.destinations.get(remote.serverName)).inFlight!.txnId);
    const firstTxnIds = (inFlight!.body.pdus as Array<{ event_id: string }>).map((p) => p.event_id);
    await remote.start();
    await h.bus.publish(h.topology.serverUp.subject, { serverName: remote.serverName, at: Date.now() }, { messageId: `server-up:${remote.serverName}:catch-up` });
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'drained');
    expect(remote.deliveredEventIds()).toEqual([...firstTxnIds, a[29], b[9]].filter((id, i, all) => all.indexOf(id) === i));
    const [catchUp] = await h.store.audit.query({ destination: remote.serverName, reason: 'catch_up' });
    expect(catchUp.details).toMatchObject({ rooms: ['!catchA:own.test', '!catchB:own.test'], extremities: [a[29], b[9]] });
    expect((catchUp.details as { skippedCount: number }).skippedCount).toBe(40 - firstTxnIds.length);
  });

  it('catch-up sends a destination only the extremities it may see, in rooms it is still in (issue 10, defect 7)', async () => {
    await remote.stop();
    const h = await open({ catchUpQueueLimit: 5, backoff: { initialMs: 600_000, multiplier: 2, maxMs: 3_600_000, jitter: 0 }, wakePollMs: 600_000 });
    const member = `@r:${remote.serverName}`;
    /** An event whose state says: history visibility `visibility`, the remote's user with `membership`. */
    async function extremityWithState(roomId: string, eventId: string, visibility: string, membership: string): Promise<void> {
      const stateEvent = async (id: string, type: string, stateKey: string, content: Record<string, unknown>) => {
        await h.store.events.append({ eventId: id, roomId, type, stateKey, depth: 1, prevEventIds: [], authEventIds: [], pdu: { ...pduOf(roomId, id, 1), type, state_key: stateKey, content: content as JsonObject }, status: 'accepted', outlier: false, receivedTs: 1 });
      };
      await stateEvent(`${eventId}-hv`, 'm.room.history_visibility', '', { history_visibility: visibility });
      await stateEvent(`${eventId}-member`, 'm.room.member', member, { membership });
      await h.store.events.append({ eventId, roomId, type: 'm.room.message', depth: 100, prevEventIds: [], authEventIds: [], pdu: pduOf(roomId, eventId, 100), status: 'accepted', outlier: false, receivedTs: 1 });
      const state = new Map([
        [stateTupleKey('m.room.history_visibility', ''), `${eventId}-hv`],
        [stateTupleKey('m.room.member', member), `${eventId}-member`],
      ]);
      const snapshot = await h.store.state.save(roomId, state);
      await h.store.state.setForEvent(eventId, { before: snapshot, after: snapshot });
      await h.store.rooms.updateForwardExtremities(roomId, { add: [eventId], remove: [] });
    }
    // Still joined, may see the latest event: it goes.
    const seen = await storeEvents(h.store, '!seen:own.test', 4);
    await extremityWithState('!seen:own.test', '$seen-latest', 'joined', 'join');
    await h.store.rooms.setJoinedServers('!seen:own.test', [OWN, remote.serverName]);
    // Still joined (another user), but the latest event is from after its user left a members-only room: the last queued event goes instead.
    const hidden = await storeEvents(h.store, '!hidden:own.test', 4);
    await extremityWithState('!hidden:own.test', '$hidden-latest', 'joined', 'leave');
    await h.store.rooms.setJoinedServers('!hidden:own.test', [OWN, remote.serverName]);
    // No longer in the room: nothing newer than what was queued for it.
    const left = await storeEvents(h.store, '!left:own.test', 4);
    await extremityWithState('!left:own.test', '$left-latest', 'shared', 'leave');
    await h.store.rooms.setJoinedServers('!left:own.test', [OWN]);

    await publishLocal(h, '!seen:own.test', seen, [remote.serverName]);
    await publishLocal(h, '!hidden:own.test', hidden, [remote.serverName]);
    await publishLocal(h, '!left:own.test', left, [remote.serverName]);
    await until(async () => (await h.store.egressQueue.count(remote.serverName, 0)) === 12, 'all queued');
    await until(async () => (await h.store.destinations.get(remote.serverName)).failures >= 1, 'failed once');
    const inFlight = await h.store.egressQueue.getTransaction(remote.serverName, (await h.store.destinations.get(remote.serverName)).inFlight!.txnId);
    const firstTxnIds = (inFlight!.body.pdus as Array<{ event_id: string }>).map((p) => p.event_id);
    await remote.start();
    await h.bus.publish(h.topology.serverUp.subject, { serverName: remote.serverName, at: Date.now() }, { messageId: `server-up:${remote.serverName}:visibility` });
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'drained');

    const delivered = remote.deliveredEventIds();
    expect(delivered).not.toContain('$hidden-latest');
    expect(delivered).not.toContain('$left-latest');
    expect(delivered.slice(firstTxnIds.length)).toEqual(['$hidden-4', '$left-4', '$seen-latest']);
    const [catchUp] = await h.store.audit.query({ destination: remote.serverName, reason: 'catch_up' });
    expect(catchUp.details).toMatchObject({
      extremities: ['$hidden-4', '$left-4', '$seen-latest'],
      withheld: [
        { roomId: '!hidden:own.test', eventId: '$hidden-latest', why: 'not_visible' },
        { roomId: '!left:own.test', why: 'not_in_room' },
      ],
    });
  });

  it('gives up a transaction to a refused address with a reason someone can query', async () => {
    const h = await open({}, { allowLoopback: false });
    const ids = await storeEvents(h.store, '!refused:own.test', 2);
    await publishLocal(h, '!refused:own.test', ids, [remote.serverName]);
    // The queue is empty before egress has taken the events from the bus too, so wait for the reason first.
    const refusedIds = async () => (await h.store.audit.query({ destination: remote.serverName, reason: 'ADDRESS_REFUSED' })).flatMap((r) => (r.details as { eventIds: string[] }).eventIds);
    await until(async () => (await refusedIds()).length === ids.length && (await h.store.egressQueue.destinationsWithWork()).length === 0, 'queue given up');
    const refused = await h.store.audit.query({ destination: remote.serverName, reason: 'ADDRESS_REFUSED' });
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(r).toMatchObject({ direction: 'out', origin: OWN, outcome: 'rejected', status: 0, details: { dropped: true } });
    expect(refused.flatMap((r) => (r.details as { eventIds: string[] }).eventIds).sort()).toEqual([...ids].sort());
    expect(remote.received).toEqual([]);
  });

  it('gives up a transaction the remote refuses with a 4xx, keeping the errcode', async () => {
    remote.answer = () => ({ status: 400, body: { errcode: 'M_BAD_JSON', error: 'no' } });
    const h = await open();
    const ids = await storeEvents(h.store, '!bad:own.test', 1);
    await publishLocal(h, '!bad:own.test', ids, [remote.serverName]);
    await until(async () => (await h.store.audit.query({ destination: remote.serverName, reason: 'M_BAD_JSON' })).length === 1, 'refusal recorded');
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'given up');
    expect(remote.received).toHaveLength(1);
  });

  // Issue 18 defect 10: a 401 from a remote that has not fetched our key yet dropped the whole transaction.
  it('retries a transaction refused with 401 until the remote accepts it, then delivers it once', async () => {
    let refusals = 2;
    remote.answer = () => (refusals-- > 0 ? { status: 401, body: { errcode: 'M_UNAUTHORIZED', error: 'Failed to find any key to satisfy' } } : { status: 200, body: { pdus: {} } });
    const h = await open();
    const ids = await storeEvents(h.store, '!unauth:own.test', 3);
    await publishLocal(h, '!unauth:own.test', ids, [remote.serverName]);
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0 && remote.deliveredEventIds().length === 3, 'delivered after the 401s');
    const first = remote.received[0].txnId;
    expect(remote.received.filter((t) => t.txnId === first).map((t) => t.answeredStatus)).toEqual([401, 401, 200]);
    const errors = await h.store.audit.query({ destination: remote.serverName, reason: 'M_UNAUTHORIZED' });
    expect(errors.map((r) => r.outcome)).toEqual(['error', 'error']);
  });

  it('waits retry_after_ms after a 429 and sends the same transaction again', async () => {
    let limited = true;
    remote.answer = () => (limited ? ((limited = false), { status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 30 } }) : { status: 200, body: { pdus: {} } });
    const h = await open({ backoff: { initialMs: 60_000, multiplier: 2, maxMs: 120_000, jitter: 0 } });
    const ids = await storeEvents(h.store, '!limited:own.test', 1);
    await publishLocal(h, '!limited:own.test', ids, [remote.serverName]);
    // With a backoff of a minute, delivery within the test's time means retry_after_ms was used.
    await until(() => remote.deliveredEventIds().length === 1, 'delivered after retry_after_ms');
    const [limitedRecord] = await h.store.audit.query({ destination: remote.serverName, reason: 'M_LIMIT_EXCEEDED' });
    expect(limitedRecord.outcome).toBe('error');
  });

  it('a transaction given up for good queues catch-up for its rooms, recorded with the dropped event IDs', async () => {
    const h = await open();
    const ids = await storeEvents(h.store, '!dropped:own.test', 2);
    const later = (await storeEvents(h.store, '!dropped:own.test', 1, 3))[0];
    await h.store.rooms.ensure({ roomId: '!dropped:own.test', roomVersion: '10', creator: `@alice:${OWN}`, createdTs: 1 });
    await h.store.rooms.updateForwardExtremities('!dropped:own.test', { add: [later], remove: [] });
    remote.answer = (txn) => (txn.body.pdus.some((p) => ids.includes(String(p.event_id))) ? { status: 400, body: { errcode: 'M_BAD_JSON', error: 'no' } } : { status: 200, body: { pdus: {} } });
    await publishLocal(h, '!dropped:own.test', ids, [remote.serverName]);
    await until(async () => remote.deliveredEventIds().includes(later), 'the room caught up with its latest event');
    await until(async () => (await h.store.egressQueue.destinationsWithWork()).length === 0, 'drained');
    const refused = await h.store.audit.query({ destination: remote.serverName, reason: 'M_BAD_JSON' });
    // Every refused event is in a record with the reason; each record names the catch-up it queued.
    expect(refused.flatMap((r) => (r.details as { eventIds: string[] }).eventIds)).toEqual(expect.arrayContaining(ids));
    for (const r of refused) expect(r).toMatchObject({ outcome: 'rejected', details: { dropped: true, catchUp: [{ eventId: later, roomId: '!dropped:own.test' }] } });
    expect(countById(remote.deliveredEventIds()).get(later)).toBe(1);
  });

  // Issue 12: egress sent successfully, then its own store write failed and it recorded that as the
  // destination's failure (a 10-minute backoff for a peer that had done nothing wrong).
  it('a store failure after a successful send is not the destination failure: no backoff, the same transaction is settled once the store is back', async () => {
    const h = await open({ backoff: { initialMs: 600_000, multiplier: 2, maxMs: 3_600_000, jitter: 0 } });
    const complete = h.store.egressQueue.settleTransaction.bind(h.store.egressQueue);
    let outage = 3;
    h.store.egressQueue.settleTransaction = async (...args) => {
      if (outage > 0) {
        outage--;
        throw new Error('store unavailable (simulated outage)');
      }
      return complete(...args);
    };
    const ids = await storeEvents(h.store, '!ownfault:own.test', 2);
    await publishLocal(h, '!ownfault:own.test', ids, [remote.serverName]);
    await until(async () => outage === 0 && (await h.store.egressQueue.destinationsWithWork()).length === 0, 'settled once the store answered again');
    expect(await h.store.destinations.get(remote.serverName)).toMatchObject({ failures: 0, retryAt: null, inFlight: null });
    // Sent again under the same txnId and body while our store was down; the remote dedupes it by that ID.
    const first = remote.received[0];
    expect(remote.received.filter((t) => t.txnId === first.txnId).length).toBeGreaterThan(1);
    for (const t of remote.received.filter((r) => r.txnId === first.txnId)) expect(t.raw).toBe(first.raw);
    expect(new Set(remote.deliveredEventIds())).toEqual(new Set(ids));
    expect(remote.received.every((t) => t.answeredStatus === 200)).toBe(true);
    const audit = await h.store.audit.query({ destination: remote.serverName });
    expect(audit.filter((a) => a.outcome !== 'ok')).toEqual([]);
  });

  // Issue 12: two egresses (Helm replicas: 2) both sent to one destination; the second got 429 and a long backoff.
  it('elastic replicas split room-log and destination partitions by lease: every event reaches the remote once, and one leaving hands over', async () => {
    const h = await open({}, { start: false });
    const secondStore = openSqliteStore(path.join(dir, 'fedgate.sqlite'));
    const replica = (instanceId: string, store: Store) =>
      new FederationEgress({
        serverName: OWN,
        store,
        bus: h.bus,
        topology: h.topology,
        client: h.client,
        settings: baseSettings,
        logger: silent,
        elastic: { leases: store.leases, scope: `${prefix}/federation-egress`, instanceId, ttlMs: 2_000, renewMs: 100, logger: silent },
      });
    const first = replica('egress-a', h.store);
    const second = replica('egress-b', secondStore);
    try {
      await first.start();
      await second.start();
      const holders = async () => new Set((await h.store.leases.live(`${prefix}/federation-egress/destinations/partitions/`)).map((l) => l.holder));
      await until(async () => (await holders()).size === 2, 'destination partitions split between the two');
      expect(first.owns(remote.serverName)).not.toBe(second.owns(remote.serverName));

      const ids = await storeEvents(h.store, '!elastic:own.test', 30);
      await publishLocal(h, '!elastic:own.test', ids, [remote.serverName]);
      await until(() => remote.deliveredEventIds().length === 30, '30 delivered');
      await second.stop();
      const more = await storeEvents(h.store, '!elastic:own.test', 10, 31);
      await publishLocal(h, '!elastic:own.test', more, [remote.serverName]);
      await until(() => remote.deliveredEventIds().length === 40, '40 delivered after one replica left');
      expect(await holders()).toEqual(new Set(['egress-a']));
      expect(remote.deliveredEventIds()).toEqual([...ids, ...more]);
      expect(remote.received.every((t) => t.answeredStatus === 200)).toBe(true);
    } finally {
      await first.stop();
      await second.stop();
      await secondStore.close();
    }
  });

  it('queue depth gauges (issue 12): the deepest destinations by name, the rest summed as other; nothing left once drained', async () => {
    const h = await open({}, { start: false });
    const registry = new Registry();
    registerQueueDepthGauges(registry, h.egress, 3);
    const roomId = '!depth:own.test';
    const ids = await storeEvents(h.store, roomId, 10);
    await enqueueDirect(h, remote.serverName, ids.map((eventId) => ({ kind: 'pdu', destination: remote.serverName, roomId, eventId, enqueuedAt: Date.now() })));
    const others = ['gone0.invalid', 'gone1.invalid', 'gone2.invalid', 'gone3.invalid', 'gone4.invalid'];
    for (const d of others) await enqueueDirect(h, d, [{ kind: 'pdu', destination: d, roomId, eventId: ids[0], enqueuedAt: Date.now() }]);
    const depthLines = (text: string) => text.split('\n').filter((l) => l.startsWith('fedgate_egress_queue_depth{'));
    const piled = await registry.metrics();
    expect(depthLines(piled)).toEqual([
      `fedgate_egress_queue_depth{destination="${remote.serverName}"} 10`,
      'fedgate_egress_queue_depth{destination="gone0.invalid"} 1',
      'fedgate_egress_queue_depth{destination="gone1.invalid"} 1',
      'fedgate_egress_queue_depth{destination="other"} 3',
    ]);
    expect(piled).toContain('fedgate_egress_destinations_queued 6');
    for (const d of others) await h.store.egressQueue.removeUpTo(d, Number.MAX_SAFE_INTEGER);
    await h.egress.start();
    await until(async () => (await registry.metrics()).includes('fedgate_egress_destinations_queued 0'), 'every queue drained');
    expect(depthLines(await registry.metrics())).toEqual([]);
    expect(remote.deliveredEventIds()).toEqual(ids);
  });

  it('records per-PDU errors from the remote without retrying them', async () => {
    const h = await open();
    const ids = await storeEvents(h.store, '!pduerr:own.test', 2);
    remote.answer = (txn) => ({
      status: 200,
      body: { pdus: Object.fromEntries(txn.body.pdus.map((p) => [p.event_id, p.event_id === ids[0] ? { error: 'You are not allowed to send a message to this room.' } : {}])) },
    });
    await publishLocal(h, '!pduerr:own.test', ids, [remote.serverName]);
    await until(async () => (await h.store.audit.query({ destination: remote.serverName, reason: 'pdu_errors' })).length >= 1, 'recorded');
    await until(() => h.egress.idle, 'idle');
    const records = await h.store.audit.query({ destination: remote.serverName, reason: 'pdu_errors' });
    expect(records.flatMap((r) => Object.keys((r.details as { pduErrors: Record<string, string> }).pduErrors))).toEqual([ids[0]]);
    expect(countById(remote.deliveredEventIds()).get(ids[0])).toBe(1);
  });
});
