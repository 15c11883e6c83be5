// Issue 12, the chaos suite. Messages flow both ways between a distributed fedgate (ownership by lease, its
// own NATS and FerretDB so they can be taken away) and an embedded one while the distributed side suffers, in
// turn: kill -9 of each service, a NATS outage, a store outage, state-resolver scaled 1→3, the replica owning
// the room paused (SIGSTOP) past its lease and resumed (SIGCONT), and scaled back 3→1. Every message answered
// to its sender must reach the other side's application service once, in the order sent; the time to
// recover from each fault is printed (not asserted).
//
// Short form (npm test): one round, 5 s outages. Long form (`npm run chaos`, FEDGATE_TEST_CHAOS=long):
// three rounds, 30 s outages, longer pauses, and egress and chat-sync scaled too.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { busTopology } from '@fedgate/bus';
import { createTestCa, LocalFerretDb, LocalNatsServer, keepLogsAndDestroy, startFedgate, startTogether, testResultsDir, type FedgateInstance, type FedgateProcess } from '@fedgate/testing';
import { MongoClient } from 'mongodb';
import { expectExactlyOnceInOrder, sleep, startTrafficBothWays, trafficBothWays } from './chaos-traffic';

const LONG = process.env.FEDGATE_TEST_CHAOS === 'long';
const LEASE_TTL_MS = 5_000;
const ROUNDS = Number(process.env.FEDGATE_TEST_CHAOS_ROUNDS ?? (LONG ? 3 : 1));
const OUTAGE_MS = LONG ? 30_000 : 5_000;
const PAUSE_MS = LONG ? 4 * LEASE_TTL_MS : 2 * LEASE_TTL_MS;
const SCALED_STAGES = LONG ? (['state-resolver', 'federation-egress', 'chat-sync'] as const) : (['state-resolver'] as const);

jest.setTimeout(600_000 * ROUNDS);

interface Recovery {
  fault: string;
  /** From the fault's start until a message each way sent after it had arrived. */
  sinceStartMs: number;
  /** From the fault's end (service back, process resumed) until then. */
  sinceEndMs: number;
}

describe('chaos (issue 12): kill -9, NATS and store outages, pauses and scaling under traffic both ways', () => {
  let nats: LocalNatsServer;
  let store: LocalFerretDb;
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    [nats, store] = await startTogether([LocalNatsServer.start(), LocalFerretDb.start()] as const);
    const ca = createTestCa();
    [a, b] = await startTogether([
      startFedgate({
        shape: 'distributed',
        ca,
        name: 'a',
        config: {
          replicas: { ownership: 'leases', leaseTtlMs: LEASE_TTL_MS },
          nats: { url: nats.url },
          mongo: { url: store.url, database: 'fedgate_chaos' },
        },
      }),
      startFedgate({ shape: 'embedded', ca, name: 'b' }),
    ] as const);
  }, 240_000);

  afterAll(async () => {
    await keepLogsAndDestroy('chaos', [a, b]);
    await Promise.all([nats?.stop(), store?.stop()]);
  }, 120_000);

  /** The state-resolver process holding the lease of the room's partition now. */
  async function roomOwner(roomId: string, candidates: readonly FedgateProcess[]): Promise<FedgateProcess | undefined> {
    const partition = busTopology().roomLog.partitionOf(roomId);
    const client = new MongoClient(store.url);
    try {
      const leases = await client.db('fedgate_chaos').collection('leases').find({ expiresTs: { $gt: Date.now() } }).toArray();
      const lease = leases.find((l) => String(l._id).endsWith(`/state-resolver/partitions/${partition}`));
      return candidates.find((p) => p.pid !== undefined && String(lease?.holder).endsWith(`-${p.pid}`));
    } finally {
      await client.close();
    }
  }

  it('loses nothing and delivers nothing twice; per-sender order holds; reports the time to recover from each fault', async () => {
    const { roomId, fromA, fromB } = await startTrafficBothWays(a, b, 'chaos');
    const senders = [fromA, fromB];
    const recoveries: Recovery[] = [];
    /** Runs a fault (`act` returns when it is over) and waits for traffic both ways after it. */
    const fault = async (name: string, act: () => Promise<void>) => {
      const began = Date.now();
      await act();
      const ended = Date.now();
      const recovered = await trafficBothWays(name, senders, began);
      recoveries.push({ fault: name, sinceStartMs: recovered - began, sinceEndMs: recovered - ended });
      await sleep(1_000);
    };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        for (const victim of a.processes) {
          await fault(`kill -9 ${victim.app}`, async () => {
            await victim.stop('SIGKILL');
            await victim.start();
          });
        }
        await fault(`NATS down ${OUTAGE_MS / 1000} s`, async () => {
          await nats.down();
          await sleep(OUTAGE_MS);
          await nats.up();
        });
        await fault(`store down ${OUTAGE_MS / 1000} s`, async () => {
          await store.down();
          await sleep(OUTAGE_MS);
          await store.up();
        });
        for (const stage of SCALED_STAGES) {
          const first = a.processes.find((p) => p.app === stage)!;
          const extra: FedgateProcess[] = [];
          await fault(`${stage} 1→3`, async () => {
            extra.push(await a.addReplica(stage), await a.addReplica(stage));
          });
          if (stage === 'state-resolver') {
            const paused = (await roomOwner(roomId, [first, ...extra])) ?? first;
            await fault(`SIGSTOP ${PAUSE_MS / 1000} s of the state-resolver owning the room`, async () => {
              paused.signal('SIGSTOP');
              await sleep(PAUSE_MS);
              paused.signal('SIGCONT');
            });
          }
          await fault(`${stage} 3→1`, async () => {
            for (const replica of extra) await replica.close();
          });
        }
      }
    } finally {
      await fromA.stop();
      await fromB.stop();
    }

    await expectExactlyOnceInOrder(fromA, roomId);
    await expectExactlyOnceInOrder(fromB, roomId);
    const report =
      `chaos (${LONG ? 'long' : 'short'}, ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}): ${fromA.answered.length} + ${fromB.answered.length} messages, lost 0, duplicated 0; ` +
      `recovered (from fault start / from its end): ${recoveries.map((r) => `${r.fault} ${(r.sinceStartMs / 1000).toFixed(1)}/${(r.sinceEndMs / 1000).toFixed(1)} s`).join(', ')}`;
    console.log(report);
    await writeFile(path.join(testResultsDir('chaos'), 'report.txt'), `${report}\n`).catch(() => undefined);
  });
});
