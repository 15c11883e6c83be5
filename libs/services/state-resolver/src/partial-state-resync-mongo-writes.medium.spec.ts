// crash-gaps: a partial-state resync under a partition lease on MongoDB writes room data through the store fence
// (`RoomWriteFence`): the room's fence checked and raised on its commits document, then the write in its own
// collection — two writes. The replica dies between them (and at its other writes), then the next owner takes the
// partition over and resumes the resync: it must end where an uncut one ends.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import type { ElasticOwnership } from '@fedgate/platform';
import { MongoWriteCrash, openMongoStore } from '@fedgate/store';
import pino from 'pino';
import { StateResolver } from './state-resolver';
import { partiallyJoinedRoom, replica, resyncUnderWay, TTL_MS } from './testing/resync-replicas';
import type { TestNetwork, TestServer } from './testing/test-server';

jest.setTimeout(300_000);

const url = process.env.FEDGATE_TEST_MONGO_URL as string;

/** An elastic replica of the joiner over a store whose collection writes die at `crash`'s chosen write. */
async function dyingReplica(joiner: TestServer, network: TestNetwork, db: string, crash: MongoWriteCrash, now: number) {
  const store = await openMongoStore(url, db, { wrapCollections: (c) => crash.collections(c) });
  const deps = (joiner.resolver as unknown as { deps: ConstructorParameters<typeof StateResolver>[0] }).deps;
  const elastic: ElasticOwnership = { leases: store.leases, scope: 'test/state-resolver', instanceId: 'sr-dying', ttlMs: TTL_MS, logger: pino({ level: 'silent' }), now: () => now };
  return { store, resolver: new StateResolver({ ...deps, store, keyRing: network.keyRing(), elastic }) };
}

async function withRoom(run: (room: Awaited<ReturnType<typeof partiallyJoinedRoom>> & { db: string }) => Promise<void>) {
  const db = `fedgate_resync_cut_${randomBytes(4).toString('hex')}`;
  const joinerStore = await openMongoStore(url, db);
  const room = await partiallyJoinedRoom({ joinerStore });
  try {
    await run({ ...room, db });
  } finally {
    await room.network.close();
    const client = await MongoClient.connect(url);
    await client.db(db).dropDatabase();
    await client.close();
  }
}

describe('partial-state resync on MongoDB cut between its fence and its write (crash-gaps)', () => {
  it('the replica dying before each write of the resync, between each fence and its guarded write included: the next owner resumes, and the room ends as an uncut resync leaves it', async () => {
    // Which collection writes an uncut resync under a lease makes, in order.
    const probe = new MongoWriteCrash();
    let writes: string[] = [];
    await withRoom(async ({ joiner, network, db, roomId }) => {
      const r = await dyingReplica(joiner, network, db, probe, 10_000_000);
      try {
        await r.resolver.start();
        expect(await (await resyncUnderWay(r as never, roomId)).ended).toBe('finished');
        writes = [...probe.log];
      } finally {
        await r.resolver.stop();
        await r.store.close();
      }
    });
    // Taking the partitions (leases, their epochs, the fences raised) comes first; the resync's own writes after.
    const first = writes.findIndex((w) => !/^(leases|counters)\.|^roomCommits\.updateMany$/.test(w));
    const betweenFenceAndWrite = writes.flatMap((w, i) => (w === 'roomCommits.updateOne' && i + 1 < writes.length ? [i + 2] : []));
    expect(betweenFenceAndWrite.map((i) => writes[i - 1])).toEqual(expect.arrayContaining(['eventState.replaceOne', 'rooms.updateOne', 'joinedServers.updateOne', 'partialStateRooms.deleteOne']));
    const dieAts = writes.map((_, i) => i + 1).filter((i) => i > first);

    for (const dieAt of dieAts) {
      await withRoom(async ({ joiner, network, db, resident, roomId }) => {
        const crash = new MongoWriteCrash(dieAt);
        const dying = await dyingReplica(joiner, network, db, crash, 10_000_000);
        const next = replica(joiner, network, 'sr-next', 10_000_000 + 2 * TTL_MS);
        try {
          await dying.resolver.start().catch(() => undefined);
          const cut = await resyncUnderWay(dying as never, roomId).then(
            (r) => r.ended,
            (err: unknown) => err,
          );
          // Cut short (a resync dying at its first write may be over before it is looked for).
          expect({ dieAt, diedBefore: writes[dieAt - 1], died: crash.died, cut: String(cut) }).toEqual({ dieAt, diedBefore: writes[dieAt - 1], died: true, cut: expect.stringMatching(/simulated crash|no resync under way/) });
          // The process is gone (its lease left to expire); the next owner takes the partition and resumes.
          await dying.resolver.stop().catch(() => undefined);
          await next.resolver.start();
          const resumed = await resyncUnderWay(next, roomId).catch(() => undefined);
          if (resumed) expect(await resumed.ended).toBe('finished');
          expect({ dieAt, partial: await joiner.store.partialStateRooms.get(roomId) }).toEqual({ dieAt, partial: undefined });
          expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
          expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
        } finally {
          await next.resolver.stop();
          await dying.store.close();
        }
      });
    }
  });
});
