// Issue 19, distributed mode: store round trips the state-resolver pays per inbound PDU on the MongoDB adapter,
// counted on the real MongoDB-wire database of the run (FerretDB here, whose SQLite backend answers `$in` by a
// scan, so the adapter looks events up one `_id` at a time). Counted, not timed.
// The state-resolver's total per inbound PDU, with the partition owner's read cache over this adapter (23 -> 9):
// libs/services/state-resolver/src/owned-room-cache.medium.spec.ts.
import { randomBytes } from 'node:crypto';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import type { EventRecord } from '../ports/events';
import type { Store } from '../ports/store';
import { openMongoStore } from './store';

const url = process.env.FEDGATE_TEST_MONGO_URL as string;
const db = `fedgate_round_trips_${randomBytes(4).toString('hex')}`;

/** Commands the stores of this test send (their URL turns command monitoring on), by `collection.command`. */
class CommandCounter {
  readonly calls: string[] = [];
  private readonly emit = MongoClient.prototype.emit as (this: MongoClient, name: string | symbol, ...args: unknown[]) => boolean;

  install(): void {
    const calls = this.calls;
    const emit = this.emit;
    MongoClient.prototype.emit = function (this: MongoClient, name: string | symbol, ...args: unknown[]) {
      if (name === 'commandStarted') {
        const { commandName, command } = args[0] as CommandStartedEvent;
        if (!['ping', 'hello', 'isMaster', 'ismaster', 'endSessions', 'buildInfo', 'createIndexes'].includes(commandName)) calls.push(`${String(command[commandName])}.${commandName}`);
      }
      return emit.call(this, name, ...args);
    } as typeof MongoClient.prototype.emit;
  }

  uninstall(): void {
    MongoClient.prototype.emit = this.emit as typeof MongoClient.prototype.emit;
  }

  async during(work: () => Promise<unknown>): Promise<string[]> {
    this.calls.length = 0;
    await work();
    return [...this.calls];
  }
}

const monitored = `${url}${url.includes('?') ? '&' : '?'}monitorCommands=true`;

const eventRecord = (roomId: string, n: number): EventRecord => ({
  eventId: `$rt-${n}-${randomBytes(6).toString('hex')}`,
  roomId,
  type: 'm.room.message',
  depth: n,
  prevEventIds: [],
  authEventIds: [],
  pdu: { type: 'm.room.message', room_id: roomId, sender: '@a:remote.test', content: { body: `m${n}` } } as never,
  status: 'accepted',
  outlier: false,
  receivedTs: Date.now(),
});

describe('store round trips per inbound PDU, MongoDB adapter (issue 19, distributed)', () => {
  const counter = new CommandCounter();
  let store: Store;
  let other: Store;

  beforeAll(async () => {
    store = await openMongoStore(monitored, db);
    other = await openMongoStore(monitored, db);
    counter.install();
  });

  afterAll(async () => {
    counter.uninstall();
    await Promise.all([store?.close(), other?.close()]);
    const client = await MongoClient.connect(url);
    await client.db(db).dropDatabase();
    await client.close();
  });

  it('missing() asks the database only about IDs this process has not seen stored (the state-resolver asks for every PDU\'s prev and auth events: one lookup each before)', async () => {
    const room = `!rt-${randomBytes(3).toString('hex')}:gw.test`;
    const [a, b, c] = [eventRecord(room, 1), eventRecord(room, 2), eventRecord(room, 3)];
    await store.events.append(a);
    await store.events.appendMany([b]);
    await other.events.append(c);
    const unknown = `$never-${randomBytes(4).toString('hex')}`;

    // Stored or read by this process: answered without the database.
    expect(await counter.during(async () => expect(await store.events.missing([a.eventId, b.eventId])).toEqual([]))).toEqual([]);
    // Stored by another process: looked up once, then known.
    const firstAsk = await counter.during(async () => expect(await store.events.missing([a.eventId, c.eventId, unknown])).toEqual([unknown]));
    expect(firstAsk.every((op) => op.startsWith('events.'))).toBe(true);
    expect(firstAsk.length).toBeGreaterThanOrEqual(1);
    expect(firstAsk.length).toBeLessThanOrEqual(2);
    expect(await counter.during(async () => expect(await store.events.missing([c.eventId])).toEqual([]))).toEqual([]);
    // What is not stored is asked again each time (it may arrive), and reported in the given order.
    expect(await store.events.missing([unknown, a.eventId, unknown])).toEqual([unknown, unknown]);
    expect((await counter.during(() => store.events.missing([unknown]))).length).toBe(1);
    // Read by getMany/get: known too.
    const d = eventRecord(room, 4);
    await other.events.append(d);
    await store.events.getMany([d.eventId]);
    expect(await counter.during(() => store.events.missing([d.eventId]))).toEqual([]);
  });

  it('removing a finished commit is one write once the earlier one-document-per-commit layout is found empty (it deleted from that collection too, every time)', async () => {
    const room = `!rt-${randomBytes(3).toString('hex')}:gw.test`;
    const commit = (n: number) => ({ eventId: `$c${n}-${randomBytes(4).toString('hex')}`, roomId: room, payload: { n }, createdTs: Date.now() });
    const [first, second] = [commit(1), commit(2)];
    await store.pendingCommits.add(first);
    await store.pendingCommits.add(second);
    await store.pendingCommits.remove(first.eventId, room);
    expect(await counter.during(() => store.pendingCommits.remove(second.eventId, room))).toEqual(['room_commits.update']);
    expect(await store.pendingCommits.list(room)).toEqual([]);
  });

  it('a commit\'s change of forward extremities (add the event, remove its prev events) is one write (it was an $addToSet and then a $pullAll)', async () => {
    const room = `!rt-${randomBytes(3).toString('hex')}:gw.test`;
    await store.rooms.updateForwardExtremities(room, { add: ['$one', '$two'], remove: [] });
    expect(await counter.during(() => store.rooms.updateForwardExtremities(room, { add: ['$three'], remove: ['$one', '$two'] }))).toEqual(['forward_extremities.update']);
    expect(await other.rooms.getForwardExtremities(room)).toEqual(['$three']);
    // In both: it stays.
    await store.rooms.updateForwardExtremities(room, { add: ['$four.x', '$three'], remove: ['$three'] });
    expect(await other.rooms.getForwardExtremities(room)).toEqual(['$four.x', '$three']);
  });

  it('forward extremities written by the earlier layout (one array) are read and removed', async () => {
    const room = `!rt-${randomBytes(3).toString('hex')}:gw.test`;
    const client = await MongoClient.connect(url);
    try {
      await client.db(db).collection('forward_extremities').insertOne({ _id: room as never, eventIds: ['$old-a', '$old-b'] });
      expect(await store.rooms.getForwardExtremities(room)).toEqual(['$old-a', '$old-b']);
      await store.rooms.updateForwardExtremities(room, { add: ['$new'], remove: ['$old-a'] });
      expect(await store.rooms.getForwardExtremities(room)).toEqual(['$new', '$old-b']);
      await store.rooms.updateForwardExtremities(room, { add: [], remove: ['$old-b', '$new'] });
      expect(await store.rooms.getForwardExtremities(room)).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('a commit left in the earlier layout is still removed (and the layout is read while it holds any)', async () => {
    const room = `!rt-${randomBytes(3).toString('hex')}:gw.test`;
    const client = await MongoClient.connect(url);
    const fresh = await openMongoStore(monitored, db);
    try {
      await client.db(db).collection('pending_commits').insertOne({ _id: '$legacy-commit' as never, roomId: room, payload: '{}', createdTs: 1, seq: 1 });
      expect((await fresh.pendingCommits.list(room)).map((c) => c.eventId)).toEqual(['$legacy-commit']);
      await fresh.pendingCommits.remove('$legacy-commit', room);
      expect(await fresh.pendingCommits.list(room)).toEqual([]);
    } finally {
      await fresh.close();
      await client.close();
    }
  });
});
