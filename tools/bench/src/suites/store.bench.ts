import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { openMongoStore, openSqliteStore, stateTupleKey, type EventRecord, type Store } from '@fedgate/store';
import { startMongo, stopMongo } from '@fedgate/testing';
import { fmt, percentile, type BenchSection, type BenchSuite } from '../harness';

const SINGLE_APPENDS = 2000;
const BATCHED_APPENDS = 10_000;
const BATCH = 100;
const STATE_EVENTS = 1000;
const LOOKUPS = 500;

function event(roomId: string, i: number): EventRecord {
  const eventId = `$bench-${roomId}-${i}`;
  return {
    eventId,
    roomId,
    type: 'm.room.message',
    depth: i + 1,
    prevEventIds: i > 0 ? [`$bench-${roomId}-${i - 1}`] : [],
    authEventIds: ['$create', '$power', '$member'],
    pdu: {
      event_id: eventId,
      room_id: roomId,
      sender: '@bench:remote.test',
      origin_server_ts: 1_700_000_000_000 + i,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: `message ${i} `.repeat(8) },
      prev_events: i > 0 ? [`$bench-${roomId}-${i - 1}`] : [],
      auth_events: ['$create', '$power', '$member'],
      depth: i + 1,
      hashes: { sha256: 'x'.repeat(43) },
      signatures: { 'remote.test': { 'ed25519:a': 'y'.repeat(86) } },
    },
    status: 'accepted',
    outlier: false,
    receivedTs: Date.now(),
  };
}

const perSec = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s (${((ms * 1000) / n).toFixed(0)} µs each)`;

async function measure(name: string, open: () => Promise<Store>): Promise<BenchSection> {
  let store = await open();
  const rows: BenchSection['rows'] = [];

  let start = performance.now();
  for (let i = 0; i < SINGLE_APPENDS; i++) await store.events.append(event('!single:bench', i));
  rows.push({ name: `event append, one at a time (${SINGLE_APPENDS})`, value: perSec(SINGLE_APPENDS, performance.now() - start) });

  start = performance.now();
  for (let i = 0; i < BATCHED_APPENDS; i += BATCH) {
    await store.events.appendMany(Array.from({ length: BATCH }, (_, j) => event('!batched:bench', i + j)));
  }
  rows.push({ name: `event append, batches of ${BATCH} (${BATCHED_APPENDS})`, value: perSec(BATCHED_APPENDS, performance.now() - start) });

  start = performance.now();
  for (let i = 0; i < SINGLE_APPENDS; i++) await store.events.append(event('!single:bench', i));
  rows.push({ name: 'event append, already stored (dedupe path)', value: perSec(SINGLE_APPENDS, performance.now() - start) });

  // A room whose every event changes one membership: the state after each event is its own snapshot.
  const room = '!state:bench';
  let snapshot = await store.state.derive(room, null, [{ type: 'm.room.create', stateKey: '', eventId: '$create' }]);
  start = performance.now();
  for (let i = 0; i < STATE_EVENTS; i++) {
    const before = snapshot;
    snapshot = await store.state.derive(room, before, [{ type: 'm.room.member', stateKey: `@u${i % 200}:bench`, eventId: `$m${i}` }]);
    await store.state.setForEvent(`$m${i}`, { before, after: snapshot });
  }
  rows.push({ name: `state derive + record for an event (${STATE_EVENTS}, 200 members)`, value: perSec(STATE_EVENTS, performance.now() - start) });

  const lookups = async (label: string) => {
    const samples: number[] = [];
    for (let k = 0; k < LOOKUPS; k++) {
      const id = `$m${(k * 7919) % STATE_EVENTS}`;
      const t = performance.now();
      const state = await store.state.stateAfterEvent(id);
      samples.push(performance.now() - t);
      if (!state?.has(stateTupleKey('m.room.create', ''))) throw new Error(`state after ${id} is wrong`);
    }
    const total = samples.reduce((a, b) => a + b, 0);
    samples.sort((a, b) => a - b);
    rows.push({ name: `state after event, ${label}`, value: perSec(LOOKUPS, total), note: `p50 ${fmt.ms(percentile(samples, 50))}, p99 ${fmt.ms(percentile(samples, 99))}` });
  };
  await lookups('warm cache');
  await store.close();
  store = await open();
  await lookups('cold start (reopened; cache fills as it goes)');
  await store.close();
  return { title: name, rows };
}

const suite: BenchSuite = {
  name: 'store',
  async run() {
    const sections: BenchSection[] = [];
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-store-bench-'));
    try {
      const file = path.join(dir, 'bench.db');
      sections.push(await measure('SQLite (embedded, WAL, one file)', async () => openSqliteStore(file)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const { url } = await startMongo();
    const db = `fedgate_store_bench_${randomBytes(4).toString('hex')}`;
    const client = await MongoClient.connect(url);
    try {
      const info = await client.db('admin').command({ buildInfo: 1 });
      const server = info.ferretdbVersion ? `FerretDB ${info.ferretdbVersion} (SQLite backend)` : `MongoDB ${info.version}`;
      const section = await measure(`MongoDB wire: ${server}`, () => openMongoStore(url, db));
      section.notes = [
        'Loopback, database shared with nothing else.',
        ...(info.ferretdbVersion ? ['FerretDB answers only _id equality without a collection scan; production runs on MongoDB, where indexes apply.'] : []),
      ];
      sections.push(section);
    } finally {
      await client.db(db).dropDatabase();
      await client.close();
      await stopMongo();
    }
    return sections;
  },
};
export default suite;
