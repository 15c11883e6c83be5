// The partial-state resync handed over mid-fetch between elastic replicas, on the real MongoDB-wire store of a
// distributed deployment (FerretDB here): the old owner writes nothing after the release, the new owner ends it once.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { openMongoStore } from '@fedgate/store';
import { partiallyJoinedRoom, rebalance, replica, resyncUnderWay, TTL_MS } from './testing/resync-replicas';

const url = process.env.FEDGATE_TEST_MONGO_URL as string;

describe('partial-state resync and the partition lease, on MongoDB (distributed)', () => {
  it('a resync in flight when its partition is lost stops with no further store write; the new owner resumes and completes it once', async () => {
    const db = `fedgate_resync_fence_${randomBytes(4).toString('hex')}`;
    const joinerStore = await openMongoStore(url, db);
    const { network, resident, joiner, roomId } = await partiallyJoinedRoom({ joinerStore });
    const old = replica(joiner, network, 'sr-old', 10_000_000, { held: true });
    const next = replica(joiner, network, 'sr-next', 10_000_000 + 2 * TTL_MS, { held: true });
    try {
      await old.resolver.start();
      const stopped = await resyncUnderWay(old, roomId);
      await next.resolver.start();
      const resumed = await resyncUnderWay(next, roomId);

      await rebalance(old);
      expect(old.resolver.ownedPartitions()).not.toContain(joiner.topology.roomLog.partitionOf(roomId));
      const writesAtRelease = old.writes.length;
      expect(await stopped.ended).toBeInstanceOf(Error);
      old.answer();
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();

      next.answer();
      expect(await resumed.ended).toBe('finished');
      expect(next.resynced).toHaveLength(1);
      expect(old.writes.slice(writesAtRelease)).toEqual([]);
      expect(old.resynced).toEqual([]);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
      expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
      expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
    } finally {
      await next.resolver.stop();
      await old.resolver.stop();
      await network.close();
      const client = await MongoClient.connect(url);
      await client.db(db).dropDatabase();
      await client.close();
    }
  });
});
