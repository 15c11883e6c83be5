// Defect (distributed, elastic state-resolvers): a partial-state resync kept running, and writing, after its
// replica released or lost the room's partition; its writes were not fenced by the lease epoch as commits are.
// Two elastic replicas of the joining server over its one store (testing/resync-replicas.ts); the resident's
// /state_ids answer is held back so the first replica's resync is in flight when the partition moves.
import type { CommitFence, Store } from '@fedgate/store';
import { ResyncFencedError, type ResyncOutcome } from './partial-state-resync';
import { StateResolver } from './state-resolver';
import { partiallyJoinedRoom, rebalance, replica, resyncUnderWay, TTL_MS } from './testing/resync-replicas';


describe('partial-state resync and the partition lease (distributed, elastic state-resolvers)', () => {
  it('defect: a resync in flight when its partition is lost went on writing; now it stops with no further store write, the room stays partial, and the new owner resumes and completes it once', async () => {
    const { network, resident, joiner, roomId } = await partiallyJoinedRoom();
    const old = replica(joiner, network, 'sr-old', 10_000_000, { held: true });
    const next = replica(joiner, network, 'sr-next', 10_000_000 + 2 * TTL_MS, { held: true });
    try {
      await old.resolver.start();
      const stopped = await resyncUnderWay(old, roomId);

      // The old owner stalls past its lease; the next one takes the partition and resumes the resync.
      await next.resolver.start();
      expect(next.resolver.ownedPartitions()).toContain(joiner.topology.roomLog.partitionOf(roomId));
      const resumed = await resyncUnderWay(next, roomId);

      // The old owner's next round finds the lease gone and releases the partition; then its held answer comes.
      await rebalance(old);
      expect(old.resolver.ownedPartitions()).not.toContain(joiner.topology.roomLog.partitionOf(roomId));
      const writesAtRelease = old.writes.length;
      // Its /state_ids call in flight is not waited for: the run ends while the answer is still held.
      expect(await stopped.ended).toBeInstanceOf(Error);
      old.answer();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(old.writes.slice(writesAtRelease)).toEqual([]);
      expect(old.resynced).toEqual([]);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();

      next.answer();
      expect(await resumed.ended).toBe('finished');
      expect(next.resynced).toHaveLength(1);
      expect(next.resynced[0]).toMatchObject({ roomId, rejected: [] });
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
      expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
      expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
      expect(old.writes.slice(writesAtRelease)).toEqual([]);
    } finally {
      await next.resolver.stop();
      await old.resolver.stop();
      await network.close();
    }
  });

  it('defect: a resync whose lease holding went stale (its replica not yet aware) wrote on; now each write is refused, with the fenced counter told why, and nothing of it is written', async () => {
    const { network, joiner, roomId } = await partiallyJoinedRoom();
    const old = replica(joiner, network, 'sr-stale', 10_000_000, { held: true });
    try {
      await old.resolver.start();
      const inFlight = await resyncUnderWay(old, roomId);
      const writesBefore = old.writes.length;
      // Paused past its lease's expiry: no round has run since, so the partition is still listed as held.
      old.clock.now += 2 * TTL_MS;
      old.answer();
      const refused = await inFlight.ended;
      expect(refused).toBeInstanceOf(ResyncFencedError);
      expect(refused).toMatchObject({ roomId, message: expect.stringMatching(/begun under lease epoch \d+, the lease is no longer held here/) as unknown });
      expect(old.fenced).toEqual([refused]);
      expect(old.writes.slice(writesBefore)).toEqual([]);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();
      expect(old.resynced).toEqual([]);
    } finally {
      await old.resolver.stop();
      await network.close();
    }
  }, 30_000);

  it("defect (resync-store-fence): a replica whose clock runs slow (its own check still passing) landed its resync's writes after a newer owner raised the room's fence; now the store refuses the first of them, nothing of it is written, and the fenced counter is told", async () => {
    const { network, joiner, roomId } = await partiallyJoinedRoom();
    const old = replica(joiner, network, 'sr-slow-clock', 10_000_000, { held: true });
    try {
      await old.resolver.start();
      const inFlight = await resyncUnderWay(old, roomId);
      const partition = joiner.topology.roomLog.partitionOf(roomId);
      const held = (old.resolver as unknown as { ownership: { fence(p: number): CommitFence | undefined } }).ownership.fence(partition)!;
      const partial = (await joiner.store.partialStateRooms.get(roomId))!;
      const joinRefs = await joiner.store.state.getForEvent(partial.joinEventId);
      // A newer owner took the partition and committed in the room under a later epoch; by the old replica's slow
      // clock its lease is still fresh, so its own check lets its writes through.
      const newer = { eventId: '$newer-owner-commit', roomId, payload: {}, createdTs: 1 };
      await joiner.store.pendingCommits.add(newer, { partition, epoch: held.epoch + 1 });
      await joiner.store.pendingCommits.remove(newer.eventId, roomId);
      old.answer();
      const refused = await inFlight.ended;
      expect(refused).toBeInstanceOf(ResyncFencedError);
      expect(refused).toMatchObject({ roomId, epoch: held.epoch, roomEpoch: held.epoch + 1, message: expect.stringMatching(/refused by the store/) as unknown });
      expect(old.fenced).toEqual([refused]);
      expect(await joiner.store.state.getForEvent(partial.joinEventId)).toEqual(joinRefs);
      expect(await joiner.store.partialStateRooms.get(roomId)).toEqual(partial);
      expect(old.resynced).toEqual([]);
    } finally {
      await old.resolver.stop();
      await network.close();
    }
  }, 30_000);

  it('a lease lost in the middle of a step (between the writes of the state before our join): the next write is refused, and the next owner ends the resync as if it had never begun', async () => {
    const { network, resident, joiner, roomId } = await partiallyJoinedRoom();
    let stalled = false;
    const old = replica(joiner, network, 'sr-mid', 10_000_000, {
      held: true,
      // Paused past the lease right after the first write of the state before our join.
      onWrite: (write, clock) => {
        if (write !== 'state.save' || stalled) return;
        stalled = true;
        clock.now += 2 * TTL_MS;
      },
    });
    const next = replica(joiner, network, 'sr-after', 10_000_000 + 3 * TTL_MS);
    try {
      await old.resolver.start();
      const refused = await resyncUnderWay(old, roomId);
      old.answer();
      expect(await refused.ended).toBeInstanceOf(ResyncFencedError);
      expect(await refused.ended).toMatchObject({ step: 'state.derive' });
      expect(old.writes.slice(old.writes.indexOf('state.save') + 1)).toEqual([]);
      expect(old.fenced).toHaveLength(1);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();

      await next.resolver.start();
      for (let i = 0; i < 400 && next.resynced.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(next.resynced).toHaveLength(1);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
      expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
      expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
    } finally {
      await next.resolver.stop();
      await old.resolver.stop();
      await network.close();
    }
  });
});

describe('partial-state resync stopped and started again before the stopped run noticed', () => {
  it('defect: a partition released and taken back while its stopped resync was still blocked (on a store read) left the room partial until the next takeover; now the resync starts again once the stopped run is over', async () => {
    const { network, resident, joiner, roomId } = await partiallyJoinedRoom();
    let unblock: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (unblock = resolve));
    let reads = 0;
    const store: Store = {
      ...joiner.store,
      partialStateRooms: new Proxy(joiner.store.partialStateRooms, {
        get: (target, key) => {
          const value = (Reflect.get(target, key) as (...args: unknown[]) => unknown).bind(target);
          if (key !== 'get') return value;
          return async (...args: unknown[]) => {
            const answer = await value(...args);
            if (reads++ === 0) await blocked;
            return answer;
          };
        },
      }),
    };
    const deps = (joiner.resolver as unknown as { deps: ConstructorParameters<typeof StateResolver>[0] }).deps;
    const resynced: ResyncOutcome[] = [];
    const resolver = new StateResolver({ ...deps, store, keyRing: network.keyRing(), onResynced: (outcome) => resynced.push(outcome) });
    try {
      resolver.resync.start(roomId);
      for (let i = 0; i < 100 && reads === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(resolver.resync.stopRooms((r) => r === roomId)).toEqual([roomId]);
      resolver.resync.start(roomId);
      unblock();
      for (let i = 0; i < 400 && resynced.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(resynced).toHaveLength(1);
      expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
      expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
    } finally {
      await resolver.stop();
      await network.close();
    }
  });
});
