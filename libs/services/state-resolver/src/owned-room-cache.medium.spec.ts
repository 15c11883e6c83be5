// Issue 19, distributed mode: MongoDB round trips the state-resolver pays per inbound PDU, counted on the real
// MongoDB-wire database of the run (FerretDB here), with the owned-room read cache (elastic ownership: the
// partition's lease holder) and without it (a static share). Counted, not timed.
import { randomBytes } from 'node:crypto';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import type { InboundPdu, ReceivedMessage } from '@fedgate/bus';
import { openMongoStore, type Store } from '@fedgate/store';
import pino from 'pino';
import { TestNetwork, type TestServer } from './testing/test-server';

const url = process.env.FEDGATE_TEST_MONGO_URL as string;
const monitored = `${url}${url.includes('?') ? '&' : '?'}monitorCommands=true`;
const IGNORED = ['ping', 'hello', 'isMaster', 'ismaster', 'endSessions', 'buildInfo', 'createIndexes'];

/** Commands sent to one database while `work` runs, as `collection.command` (lease renewals left out: they run on a timer). */
async function commandsDuring(db: string, work: () => Promise<unknown>): Promise<string[]> {
  const calls: string[] = [];
  const emit = MongoClient.prototype.emit as (this: MongoClient, name: string | symbol, ...args: unknown[]) => boolean;
  MongoClient.prototype.emit = function (this: MongoClient, name: string | symbol, ...args: unknown[]) {
    if (name === 'commandStarted') {
      const { commandName, command, databaseName } = args[0] as CommandStartedEvent;
      const collection = String(command[commandName]);
      if (databaseName === db && !IGNORED.includes(commandName) && collection !== 'leases') calls.push(`${collection}.${commandName}`);
    }
    return emit.call(this, name, ...args);
  } as typeof MongoClient.prototype.emit;
  try {
    await work();
  } finally {
    MongoClient.prototype.emit = emit as typeof MongoClient.prototype.emit;
  }
  return calls;
}

const byKind = (calls: string[]) => calls.reduce<Record<string, number>>((acc, c) => ((acc[c] = (acc[c] ?? 0) + 1), acc), {});

describe('MongoDB round trips per inbound PDU in the state-resolver, with the owned-room read cache (issue 19, distributed)', () => {
  const WARM_UP = 2;
  const COUNTED = 10;
  let network: TestNetwork;
  let resident: TestServer;
  let cached: TestServer;
  let uncached: TestServer;
  const dbs = { cached: `fedgate_owned_cache_${randomBytes(4).toString('hex')}`, uncached: `fedgate_no_cache_${randomBytes(4).toString('hex')}` };

  beforeAll(async () => {
    network = new TestNetwork();
    resident = await network.add('b.test');
    const cachedStore: Store = await openMongoStore(monitored, dbs.cached);
    cached = await network.add('a.test', {
      store: cachedStore,
      // A lifetime long enough that no renewal round runs inside the counted work.
      elastic: (store) => ({ leases: store.leases, scope: 'test/state-resolver', instanceId: 'sr-counted', ttlMs: 120_000, logger: pino({ level: 'silent' }) }),
      start: true,
    });
    uncached = await network.add('c.test', { store: await openMongoStore(monitored, dbs.uncached) });
  });

  afterAll(async () => {
    await network?.close();
    const client = await MongoClient.connect(url);
    for (const db of Object.values(dbs)) await client.db(db).dropDatabase();
    await client.close();
  });

  /** Round trips the receiving server pays for each of `count` messages from the resident (its inbound partition path). */
  async function perPdu(roomId: string, server: TestServer, db: string, count: number): Promise<string[]> {
    const counted: string[] = [];
    for (let i = 0; i < count; i++) {
      const sent = await resident.send(roomId, '@bob:b.test', 'm.room.message', { msgtype: 'm.text', body: `m${i}` });
      if (!sent.ok) throw new Error(sent.error);
      const pdu = (await resident.store.events.get(sent.eventId))!.pdu;
      const data: InboundPdu = { eventId: sent.eventId, roomId, roomVersion: '12', origin: 'b.test', txnId: `t${i}`, receivedAt: Date.now(), redacted: false, pdu: pdu as never };
      const message = { stream: 'x', consumer: 'x', subject: 'x', messageId: sent.eventId, sequence: i + 1, deliveryCount: 1, headers: {}, data, working: () => undefined } as ReceivedMessage<InboundPdu>;
      counted.push(...(await commandsDuring(db, () => server.resolver.onPartitionMessage(message))));
      expect((await server.store.events.get(sent.eventId))?.status).toBe('accepted');
    }
    return counted;
  }

  it('the partition owner reads neither the room, its extremities, joined servers, partial-state record nor its own events back', async () => {
    const runs: string[][] = [];
    for (const [server, db] of [
      [cached, dbs.cached],
      [uncached, dbs.uncached],
    ] as const) {
      const roomId = await resident.createRoom('@bob:b.test');
      const joined = await server.resolver.remoteMembership.onCommand({ roomId, userId: `@alice:${server.name}`, membership: 'join', via: ['b.test'] });
      expect(joined).toMatchObject({ ok: true });
      // The join was with partial state: its room is busy with the resync (PDUs parked) until the members are in.
      for (let i = 0; (await server.store.partialStateRooms.get(roomId)) !== undefined; i++) {
        expect(i).toBeLessThan(200);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await perPdu(roomId, server, db, WARM_UP);
      runs.push(await perPdu(roomId, server, db, COUNTED));
    }
    const [withCache, withoutCache] = runs as [string[], string[]];
    const perPduWith = withCache.length / COUNTED;
    const perPduWithout = withoutCache.length / COUNTED;

    const reads = ['rooms.find', 'forward_extremities.find', 'joined_servers.find', 'partial_state_rooms.find', 'event_state.find'];
    for (const read of reads) expect(withCache.filter((c) => c === read)).toEqual([]);
    expect(withoutCache.filter((c) => reads.includes(c)).length).toBeGreaterThanOrEqual(5 * COUNTED);
    // Counted 2026-12-07: 23 per PDU without the cache (rooms 3, events 7, partial_state_rooms 2, event_state,
    // forward_extremities, joined_servers 1 each, and the writes), 9 with it: the commit's 7 writes (pending record
    // and its removal, its sequence counter, state refs, event, extremities, current state), the lookup of the new
    // event (is it held already?) and of redactions waiting for it. Since the state-resolver reads what a PDU needs
    // once (inbound-cpu, same day), 19 without the cache: the cache still saves the 10 reads left.
    expect(byKind(withCache)).toEqual(expect.objectContaining({ 'events.find': COUNTED, 'redaction_claims.find': COUNTED }));
    expect(perPduWith).toBeLessThanOrEqual(9);
    expect(perPduWithout - perPduWith).toBeGreaterThanOrEqual(10);
  });
});
