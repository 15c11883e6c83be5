// Issue 19 (fan-out to 1,000): what one local event costs egress in SQLite commits per destination, from its
// room-log entry to every destination's transaction settled. Counted, not timed: the store and the embedded bus share
// one SQLite file in this process, and every commit that wrote something is counted (an idle poll writes nothing).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync, StatementSync } from 'node:sqlite';
import { busOptionsFor, busTopology, EmbeddedBus, type RoomLogEntry } from '@fedgate/bus';
import type { JsonObject, Pdu } from '@fedgate/protocol';
import { openSqliteStore } from '@fedgate/store';
import { deliveringClient, testEgressSettings } from './__fixtures__/test-settings';
import type { EgressSettings } from './egress-settings';
import { FederationEgress } from './federation-egress';

jest.setTimeout(60_000);

const OWN = 'own.test';
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const settings: EgressSettings = testEgressSettings;

/** Commits that changed a row, by the first writing statement of each (a transaction's, or an autocommitted one). */
class WritingCommits {
  readonly byStatement = new Map<string, number>();
  private inTransaction = false;
  private firstWrite: string | undefined;
  private readonly exec = DatabaseSync.prototype.exec;
  private readonly run = StatementSync.prototype.run;

  get total(): number {
    return [...this.byStatement.values()].reduce((a, b) => a + b, 0);
  }

  install(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the patched prototypes run with their own `this`
    const counter = this;
    const { exec, run } = this;
    const label = (sql: string) => sql.replace(/\s+/g, ' ').trim().split(' (')[0]!.slice(0, 70);
    const count = (key: string) => counter.byStatement.set(key, (counter.byStatement.get(key) ?? 0) + 1);
    DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
      const statement = sql.trim().toUpperCase();
      if (statement.startsWith('BEGIN')) {
        counter.inTransaction = true;
        counter.firstWrite = undefined;
      } else if (statement.startsWith('COMMIT') || statement.startsWith('ROLLBACK')) {
        if (statement.startsWith('COMMIT') && counter.firstWrite) count(`TX ${counter.firstWrite}`);
        counter.inTransaction = false;
      }
      return exec.call(this, sql);
    };
    StatementSync.prototype.run = function (this: StatementSync, ...params: unknown[]) {
      const result = run.apply(this, params as never);
      if (Number(result.changes) > 0) {
        if (!counter.inTransaction) count(`AUTO ${label(this.sourceSQL)}`);
        else counter.firstWrite ??= label(this.sourceSQL);
      }
      return result;
    } as typeof StatementSync.prototype.run;
  }

  uninstall(): void {
    DatabaseSync.prototype.exec = this.exec;
    StatementSync.prototype.run = this.run;
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3_000; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for: ${what}`);
}

/** SQLite commits that wrote (and queue reads), while one local event went to `destinations` remotes that all answer 200. */
async function commitsForOneFanOut(destinations: number): Promise<WritingCommits & { queueReads: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-egress-commits-'));
  const file = path.join(dir, 'fedgate.sqlite');
  const topology = busTopology({ prefix: `ec${process.pid}x${destinations}`, roomPartitions: 4, destinationPartitions: 4 });
  const store = openSqliteStore(file);
  const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 10 });
  await bus.start();
  const { client, delivered } = deliveringClient();
  const egress = new FederationEgress({ serverName: OWN, store, bus, topology, client: client as never, settings, logger: silent });
  const counter = Object.assign(new WritingCommits(), { queueReads: 0 });
  const list = store.egressQueue.list.bind(store.egressQueue);
  store.egressQueue.list = async (...args) => {
    counter.queueReads++;
    return list(...args);
  };
  try {
    await egress.start();
    const roomId = '!commits:own.test';
    const eventId = '$commits-1';
    const pdu = { event_id: eventId, room_id: roomId, sender: `@alice:${OWN}`, origin_server_ts: 1, type: 'm.room.message', content: { body: 'hi' }, prev_events: [], auth_events: [], depth: 1, hashes: { sha256: 'aGFzaA' }, signatures: {} } as unknown as Pdu;
    await store.events.append({ eventId, roomId, type: 'm.room.message', depth: 1, prevEventIds: [], authEventIds: [], pdu, status: 'accepted', outlier: false, receivedTs: 1 });
    const servers = Array.from({ length: destinations }, (_, i) => `remote${i}.test`);
    const entry: RoomLogEntry = { eventId, roomId, outcome: 'accepted', local: true, event: pdu as unknown as JsonObject, stateDelta: {}, joinedServers: [OWN, ...servers] };
    counter.install();
    await bus.publish(topology.roomLog.subjectFor(roomId), entry, { messageId: eventId });
    await until(() => delivered.length === destinations, 'every destination delivered');
    await until(() => egress.idle, 'every sender settled');
    // Every destination item's bus message settled too (bus_pending rows: a settle removes its own).
    for (let p = 0; p < 4; p++) {
      for (let i = 0; ; i++) {
        const stats = await bus.consumerStats(topology.consumers.egressDestinations(p));
        if (stats.pending + stats.ackPending === 0) break;
        if (i > 3_000) throw new Error('destination messages never settled');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    counter.uninstall();
    return counter;
  } finally {
    counter.uninstall();
    await egress.stop();
    await bus.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('federation egress: SQLite commits per destination of a fan-out', () => {
  it('issue 19: one local event to 40 destinations costs at most 5 commits per destination (was 9: bus settle, queue row, saved body, new destination row, begin, audit, complete, remove items, delete body)', async () => {
    const few = await commitsForOneFanOut(10);
    const many = await commitsForOneFanOut(40);
    const perDestination = (many.total - few.total) / 30;
    const breakdown = JSON.stringify(Object.fromEntries([...many.byStatement].sort((a, b) => b[1] - a[1])), null, 1);
    if (perDestination > 5) console.error(`commits per destination: ${perDestination}; at 40:\n${breakdown}`);
    expect(perDestination).toBeLessThanOrEqual(5);
  });

  it('issue 19: a destination whose one transaction took all it had queued is not read again once delivered (one queue read per destination, was two)', async () => {
    const few = await commitsForOneFanOut(10);
    const many = await commitsForOneFanOut(40);
    expect((many.queueReads - few.queueReads) / 30).toBe(1);
  });

  it('issue 19: a crash inside settling a delivered transaction (its body not yet deleted) leaves it all in flight: cursor, items and body, so it is sent again under its ID', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-egress-settle-'));
    const store = openSqliteStore(path.join(dir, 'fedgate.sqlite'));
    const run = StatementSync.prototype.run;
    try {
      const destination = 'remote.test';
      const item = { kind: 'pdu', destination, roomId: '!r:own.test', eventId: '$e', enqueuedAt: 1 } as unknown as JsonObject;
      const { position } = await store.egressQueue.append(destination, '$e', item, 1);
      const txn = { destination, txnId: 't1', upTo: position, body: { pdus: [] } as unknown as JsonObject, createdTs: 1 };
      expect(await store.egressQueue.beginTransaction(txn)).toEqual({ txnId: 't1', upTo: position });
      StatementSync.prototype.run = function (this: StatementSync, ...params: unknown[]) {
        if (this.sourceSQL.startsWith('DELETE FROM store_egress_transactions')) throw new Error('process died here (simulated)');
        return run.apply(this, params as never);
      } as typeof StatementSync.prototype.run;
      await expect(store.egressQueue.settleTransaction(destination, 't1', position, 2)).rejects.toThrow('simulated');
      StatementSync.prototype.run = run;
      expect(await store.destinations.get(destination)).toMatchObject({ cursor: 0, inFlight: { txnId: 't1', upTo: position } });
      expect(await store.egressQueue.list(destination, 0, 10)).toHaveLength(1);
      expect(await store.egressQueue.getTransaction(destination, 't1')).toMatchObject({ txnId: 't1', upTo: position });
      // A second transaction proposed meanwhile is not saved: the one in flight is returned.
      expect(await store.egressQueue.beginTransaction({ ...txn, txnId: 't2' })).toEqual({ txnId: 't1', upTo: position });
      expect(await store.egressQueue.getTransaction(destination, 't2')).toBeUndefined();
      await store.egressQueue.settleTransaction(destination, 't1', position, 3);
      expect(await store.destinations.get(destination)).toMatchObject({ cursor: position, inFlight: null, lastSuccessTs: 3 });
      expect(await store.egressQueue.destinationsWithWork()).toEqual([]);
    } finally {
      StatementSync.prototype.run = run;
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
