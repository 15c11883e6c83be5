// Issue 19 (`/version` p99 during an outbound fan-out): how much of a fan-out's work one turn of the event loop holds.
// Counted, not timed: a marker immediate that re-arms itself runs once per turn, and every costly step of a
// destination (its item queued, its transaction prepared and handed to the client, its answer recorded and settled)
// is stamped with the turn it ran in. A listener (a `/version`) waits at most one turn, so the steps a turn holds are
// what it waits behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, type RoomLogEntry } from '@fedgate/bus';
import type { JsonObject, Pdu } from '@fedgate/protocol';
import { openSqliteStore } from '@fedgate/store';
import { testEgressSettings } from './__fixtures__/test-settings';
import { FederationEgress } from './federation-egress';
import { TurnPacer } from './turn-pacer';

jest.setTimeout(60_000);

const OWN = 'own.test';
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Counts turns of the event loop: one immediate per turn, armed again from itself (so it runs in the next turn). */
class TurnCounter {
  turn = 0;
  private stopped = false;
  start(): void {
    const tick = () => {
      this.turn++;
      if (!this.stopped) setImmediate(tick);
    };
    setImmediate(tick);
  }
  stop(): void {
    this.stopped = true;
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 6_000; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for: ${what}`);
}

/** One local event to `count` destinations through the embedded bus and SQLite store; each step stamped with its turn. */
async function fanOutByTurn(count: number, budgetMs: number): Promise<{ steps: Map<number, string[]>; delivered: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-egress-turns-'));
  const file = path.join(dir, 'fedgate.sqlite');
  const topology = busTopology({ prefix: `et${process.pid}x${count}`, roomPartitions: 4, destinationPartitions: 16 });
  const store = openSqliteStore(file);
  const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 10 });
  await bus.start();
  const turns = new TurnCounter();
  const steps = new Map<number, string[]>();
  // Every counted step costs 1 ms of the pacer's fake clock (preparing is counted with its send).
  let clock = 0;
  const pacer = new TurnPacer({ budgetMs, now: () => clock });
  const stamp = (what: string) => {
    if (what !== 'beginTransaction') clock += 1;
    const list = steps.get(turns.turn) ?? [];
    list.push(what);
    steps.set(turns.turn, list);
  };
  for (const method of ['append', 'beginTransaction', 'settleTransaction'] as const) {
    const original = (store.egressQueue[method] as (...a: unknown[]) => Promise<unknown>).bind(store.egressQueue);
    (store.egressQueue as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      stamp(method);
      return original(...args);
    };
  }
  let delivered = 0;
  // Answers after a turn, as a socket does; the request itself (signing, connecting, writing) is the step counted.
  const client = {
    putJson: async () => {
      stamp('send');
      await new Promise((resolve) => setImmediate(resolve));
      delivered++;
      return { status: 200, body: { pdus: {} } };
    },
  };
  const egress = new FederationEgress({ serverName: OWN, store, bus, topology, client: client as never, settings: testEgressSettings, logger: silent, pace: () => pacer.next() });
  try {
    await egress.start();
    const roomId = '!turns:own.test';
    const eventId = '$turns-1';
    const pdu = { event_id: eventId, room_id: roomId, sender: `@alice:${OWN}`, origin_server_ts: 1, type: 'm.room.message', content: { body: 'hi' }, prev_events: [], auth_events: [], depth: 1, hashes: { sha256: 'aGFzaA' }, signatures: {} } as unknown as Pdu;
    await store.events.append({ eventId, roomId, type: 'm.room.message', depth: 1, prevEventIds: [], authEventIds: [], pdu, status: 'accepted', outlier: false, receivedTs: 1 });
    const servers = Array.from({ length: count }, (_, i) => `remote${i}.test`);
    const entry: RoomLogEntry = { eventId, roomId, outcome: 'accepted', local: true, event: pdu as unknown as JsonObject, stateDelta: {}, joinedServers: [OWN, ...servers] };
    turns.start();
    await bus.publish(topology.roomLog.subjectFor(roomId), entry, { messageId: eventId });
    await until(() => delivered === count, 'every destination delivered');
    await until(() => egress.idle, 'every sender settled');
    return { steps, delivered };
  } finally {
    turns.stop();
    await egress.stop();
    await bus.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('federation egress: a fan-out spread over turns of the event loop (issue 19, /version during a fan-out)', () => {
  it('the pacer lets waiting steps go while the budget of the turn lasts, in the order they came, also those that wait again', async () => {
    const turns = new TurnCounter();
    // Each step costs 1 ms of a fake clock; a budget of 3 ms is 3 steps a turn.
    let clock = 0;
    const pacer = new TurnPacer({ budgetMs: 3, now: () => clock });
    const went: Array<[string, number]> = [];
    turns.start();
    const step = async (name: string, times: number) => {
      for (let i = 0; i < times; i++) {
        await pacer.next();
        // The step's own continuations (a store call answering at once) count in its turn.
        await Promise.resolve();
        clock += 1;
        went.push([`${name}${i}`, turns.turn]);
      }
    };
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((name) => step(name, 2)));
    turns.stop();
    expect(went.map(([name]) => name)).toEqual(['a0', 'b0', 'c0', 'd0', 'e0', 'f0', 'g0', 'a1', 'b1', 'c1', 'd1', 'e1', 'f1', 'g1']);
    const perTurn = Object.values(went.reduce<Record<number, number>>((c, [, turn]) => ({ ...c, [turn]: (c[turn] ?? 0) + 1 }), {}));
    expect(Math.max(...perTurn)).toBe(3);
    expect(perTurn).toHaveLength(5);
    expect(pacer.pending).toBe(0);
  });

  it('the pacer lets no more steps go in a turn than its limit, however cheap they are', async () => {
    const turns = new TurnCounter();
    const pacer = new TurnPacer({ budgetMs: 1_000, maxPerTurn: 2, now: () => 0 });
    const went: number[] = [];
    turns.start();
    await Promise.all(Array.from({ length: 7 }, async () => {
      await pacer.next();
      went.push(turns.turn);
    }));
    turns.stop();
    const perTurn = Object.values(went.reduce<Record<number, number>>((c, turn) => ({ ...c, [turn]: (c[turn] ?? 0) + 1 }), {}));
    expect(perTurn).toEqual([2, 2, 2, 1]);
  });

  it('issue 19: a fan-out to 300 holds no more destination steps (queue, prepare and send, settle) in one turn of the event loop than the budget of the pacer lets go (4 at 1 ms each; up to 41 before)', async () => {
    const { steps, delivered } = await fanOutByTurn(300, 4);
    expect(delivered).toBe(300);
    const all = [...steps.values()].flat();
    // Every destination went through each step once.
    for (const step of ['append', 'beginTransaction', 'send', 'settleTransaction']) expect(all.filter((s) => s === step)).toHaveLength(300);
    const perTurn = [...steps.values()].map((list) => list.filter((s) => s !== 'beginTransaction').length);
    const busiest = Math.max(...perTurn);
    const composition = (list: string[]) => Object.entries(list.reduce<Record<string, number>>((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {}));
    if (busiest > 4) throw new Error(`busiest turn: ${busiest} steps, ${JSON.stringify(composition([...steps.values()].find((l) => l.filter((s) => s !== 'beginTransaction').length === busiest)!))}`);
    expect(busiest).toBeLessThanOrEqual(4);
  });
});
