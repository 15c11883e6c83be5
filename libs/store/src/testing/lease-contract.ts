// The lease contract every store adapter passes: one holder at a time, expiry frees a lease a dead holder
// kept, release only by the holder.
import { CommitFencedError, RoomWriteFencedError } from '../ports/pending-commits';
import type { Store } from '../ports/store';
import { eventFor } from './store-contract';

export function describeLeaseContract(name: string, open: () => Promise<Store>): void {
  describe(`lease contract: ${name}`, () => {
    let store: Store;
    let other: Store;
    beforeAll(async () => {
      store = await open();
      // A second handle on the same data: another process (replica) in production.
      other = await open();
    });
    afterAll(async () => {
      await store?.close();
      await other?.close();
    });

    it('gives a lease to one holder at a time, across store handles', async () => {
      expect(await store.leases.tryAcquire('lease:one', 'replica-a', 60_000, 1_000)).toBe(true);
      expect(await other.leases.tryAcquire('lease:one', 'replica-b', 60_000, 1_001)).toBe(false);
      expect(await store.leases.tryAcquire('lease:other', 'replica-b', 60_000, 1_001)).toBe(true);
      await other.leases.release('lease:one', 'replica-b');
      expect(await other.leases.tryAcquire('lease:one', 'replica-b', 60_000, 1_002)).toBe(false);
      await store.leases.release('lease:one', 'replica-a');
      expect(await other.leases.tryAcquire('lease:one', 'replica-b', 60_000, 1_003)).toBe(true);
    });

    it('lets the holder renew, and frees a lease whose holder died once it expires', async () => {
      expect(await store.leases.tryAcquire('lease:crash', 'dead-replica', 10_000, 5_000)).toBe(true);
      expect(await store.leases.tryAcquire('lease:crash', 'dead-replica', 10_000, 6_000)).toBe(true);
      expect(await other.leases.tryAcquire('lease:crash', 'live-replica', 10_000, 15_999)).toBe(false);
      expect(await other.leases.tryAcquire('lease:crash', 'live-replica', 10_000, 16_000)).toBe(true);
      // The dead holder's late release does not free what the live one holds now.
      await store.leases.release('lease:crash', 'dead-replica');
      expect(await store.leases.tryAcquire('lease:crash', 'third', 10_000, 16_001)).toBe(false);
    });

    it('lists the live leases under a prefix (the replicas of a stage), not expired or other ones', async () => {
      expect(await store.leases.tryAcquire('members/stage-a/r1', 'r1', 10_000, 100_000)).toBe(true);
      expect(await other.leases.tryAcquire('members/stage-a/r2', 'r2', 1_000, 100_000)).toBe(true);
      expect(await other.leases.tryAcquire('members/stage-b/r3', 'r3', 10_000, 100_000)).toBe(true);
      expect(await other.leases.live('members/stage-a/', 100_500)).toEqual([
        { name: 'members/stage-a/r1', holder: 'r1', expiresTs: 110_000 },
        { name: 'members/stage-a/r2', holder: 'r2', expiresTs: 101_000 },
      ]);
      expect((await store.leases.live('members/stage-a/', 101_000)).map((l) => l.holder)).toEqual(['r1']);
    });

    it('renews many leases in one call, only those the holder still has', async () => {
      expect(await store.leases.tryAcquire('bulk/1', 'r1', 1_000, 200_000)).toBe(true);
      expect(await store.leases.tryAcquire('bulk/2', 'r1', 1_000, 200_000)).toBe(true);
      expect(await store.leases.tryAcquire('bulk/3', 'r1', 1_000, 200_000)).toBe(true);
      // bulk/2 expired and another replica took it; bulk/3 expired but nobody took it: still r1's.
      expect(await other.leases.tryAcquire('bulk/2', 'r2', 1_000, 201_500)).toBe(true);
      expect((await store.leases.renewMany(['bulk/1', 'bulk/2', 'bulk/3', 'bulk/none'], 'r1', 10_000, 201_600)).sort()).toEqual(['bulk/1', 'bulk/3']);
      expect(await other.leases.tryAcquire('bulk/1', 'r2', 1_000, 205_000)).toBe(false);
      expect(await store.leases.renewMany([], 'r1', 10_000, 201_600)).toEqual([]);
    });

    it('answers concurrent takers with exactly one winner', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? other : store).leases.tryAcquire('lease:race', `taker-${i}`, 60_000, 50_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('gives each holding of a lease a new, higher epoch; renewals by the holder keep it', async () => {
      const first = await store.leases.acquireWithEpoch('epoch/p0', 'r1', 1_000, 300_000);
      expect(first).toEqual(expect.any(Number));
      expect(await store.leases.acquireWithEpoch('epoch/p0', 'r1', 1_000, 300_500)).toBe(first);
      expect(await other.leases.acquireWithEpoch('epoch/p0', 'r2', 1_000, 301_000)).toBeUndefined();
      // r1 stalled past its expiry: r2 takes the lease with a later epoch, and r1 waking up cannot renew into it.
      const second = await other.leases.acquireWithEpoch('epoch/p0', 'r2', 1_000, 302_000);
      expect(second).toBeGreaterThan(first!);
      expect(await store.leases.renewMany(['epoch/p0'], 'r1', 1_000, 302_100)).toEqual([]);
      expect(await store.leases.acquireWithEpoch('epoch/p0', 'r1', 1_000, 302_100)).toBeUndefined();
      // Released and taken again, even by the same holder: a new epoch, above those of other leases too.
      await other.leases.release('epoch/p0', 'r2');
      const elsewhere = await store.leases.acquireWithEpoch('epoch/p1', 'r1', 1_000, 302_200);
      const third = await store.leases.acquireWithEpoch('epoch/p0', 'r2', 1_000, 302_300);
      expect(elsewhere).toBeGreaterThan(second!);
      expect(third).toBeGreaterThan(elsewhere!);
    });

    describe('commits fenced by lease epoch (a stale owner cannot commit after a new owner did)', () => {
      const commit = (eventId: string, roomId: string) => ({ eventId, roomId, payload: { eventId }, createdTs: 1 });

      it('refuses, in the write itself, a commit made under an older epoch than one the room has seen', async () => {
        await store.pendingCommits.add(commit('$fence-1', '!fence-a:test'), { partition: 3, epoch: 10 });
        await other.pendingCommits.add(commit('$fence-2', '!fence-a:test'), { partition: 3, epoch: 11 });
        const stale = store.pendingCommits.add(commit('$fence-3', '!fence-a:test'), { partition: 3, epoch: 10 });
        await expect(stale).rejects.toBeInstanceOf(CommitFencedError);
        await expect(stale).rejects.toMatchObject({ roomId: '!fence-a:test', eventId: '$fence-3', epoch: 10, roomEpoch: 11 });
        expect((await other.pendingCommits.list('!fence-a:test')).map((c) => c.eventId)).toEqual(['$fence-1', '$fence-2']);
        expect(await other.pendingCommits.get('$fence-3')).toBeUndefined();
        // A commit already recorded stays recorded, whoever records it again; other rooms have their own fence.
        await store.pendingCommits.add(commit('$fence-1', '!fence-a:test'), { partition: 3, epoch: 10 });
        await store.pendingCommits.add(commit('$fence-4', '!fence-b:test'), { partition: 3, epoch: 10 });
        await store.pendingCommits.remove('$fence-1');
        await store.pendingCommits.remove('$fence-2');
        await store.pendingCommits.remove('$fence-4');
        expect(await store.pendingCommits.list('!fence-a:test')).toEqual([]);
        await expect(store.pendingCommits.add(commit('$fence-5', '!fence-a:test'), { partition: 3, epoch: 10 })).rejects.toBeInstanceOf(CommitFencedError);
      });

      it("raising a partition's fence at takeover refuses older commits in its rooms before the new owner commits there", async () => {
        await store.pendingCommits.add(commit('$raise-1', '!raise-a:test'), { partition: 5, epoch: 20 });
        await store.pendingCommits.add(commit('$raise-2', '!raise-b:test'), { partition: 6, epoch: 20 });
        await store.pendingCommits.remove('$raise-1');
        await store.pendingCommits.remove('$raise-2');
        await other.pendingCommits.raiseFence({ partition: 5, epoch: 21 });
        await expect(store.pendingCommits.add(commit('$raise-3', '!raise-a:test'), { partition: 5, epoch: 20 })).rejects.toBeInstanceOf(CommitFencedError);
        await store.pendingCommits.add(commit('$raise-4', '!raise-b:test'), { partition: 6, epoch: 20 });
        await other.pendingCommits.add(commit('$raise-5', '!raise-a:test'), { partition: 5, epoch: 21 });
        expect((await store.pendingCommits.list()).map((c) => c.eventId).filter((id) => id.startsWith('$raise'))).toEqual(['$raise-4', '$raise-5']);
        await store.pendingCommits.remove('$raise-4');
        await store.pendingCommits.remove('$raise-5');
      });
    });

    describe("a partial-state resync's room writes fenced in the store, not only by the replica's own check (resync-store-fence)", () => {
      const roomId = '!rw-fence:test';
      const under = (epoch: number) => ({ roomId, partition: 9, epoch });
      const partial = { roomId, joinEventId: '$rw-join', serversInRoom: ['a.test'], resident: 'a.test', startedTs: 1 };

      it("refuses each of them, nothing written, once a newer owner raised the partition's fence; the newer owner's go through", async () => {
        await store.rooms.ensure({ roomId, roomVersion: '10', creator: '@c:test', createdTs: 1 });
        await store.events.append(eventFor(roomId, '$rw-1', 1));
        await store.partialStateRooms.begin(partial);
        // The old owner's writes under its epoch land, and bring the room's fence up to it.
        await store.events.setOutcome('$rw-1', { status: 'accepted', outlier: false }, under(40));
        await store.state.setForEvent('$rw-1', { before: 'old-before', after: 'old-after' }, under(40));
        await store.rooms.updateForwardExtremities(roomId, { add: ['$rw-1'], remove: [] }, under(40));
        await store.rooms.setCurrentState(roomId, 'old-current', under(40));
        await store.rooms.setJoinedServers(roomId, ['a.test'], under(40));

        await other.pendingCommits.raiseFence({ partition: 9, epoch: 41 });
        const stale: Array<[string, () => Promise<unknown>]> = [
          ['outcome', () => store.events.setOutcome('$rw-1', { status: 'rejected', reason: 'stale', outlier: false }, under(40))],
          ['state refs', () => store.state.setForEvent('$rw-1', { before: 'stale', after: 'stale' }, under(40))],
          ['extremities', () => store.rooms.updateForwardExtremities(roomId, { add: ['$rw-stale'], remove: ['$rw-1'] }, under(40))],
          ['current state', () => store.rooms.setCurrentState(roomId, 'stale-current', under(40))],
          ['joined servers', () => store.rooms.setJoinedServers(roomId, ['stale.test'], under(40))],
          ['end of partial state', () => store.partialStateRooms.finish(roomId, under(40))],
        ];
        for (const [, write] of stale) {
          const refused = write();
          await expect(refused).rejects.toBeInstanceOf(RoomWriteFencedError);
          await expect(refused).rejects.toBeInstanceOf(CommitFencedError);
          await expect(refused).rejects.toMatchObject({ roomId, epoch: 40, roomEpoch: 41 });
        }
        expect(await other.events.get('$rw-1')).toMatchObject({ status: 'accepted' });
        expect(await other.state.getForEvent('$rw-1')).toEqual({ before: 'old-before', after: 'old-after' });
        expect(await other.rooms.getForwardExtremities(roomId)).toEqual(['$rw-1']);
        expect((await other.rooms.get(roomId))?.currentStateId).toBe('old-current');
        expect(await other.rooms.getJoinedServers(roomId)).toEqual(['a.test']);
        expect(await other.partialStateRooms.get(roomId)).toEqual(partial);

        await other.state.setForEvent('$rw-1', { before: 'new-before', after: 'new-after' }, under(41));
        await other.partialStateRooms.finish(roomId, under(41));
        expect(await store.state.getForEvent('$rw-1')).toEqual({ before: 'new-before', after: 'new-after' });
        expect(await store.partialStateRooms.get(roomId)).toBeUndefined();
        // Without a fence (not elastic) a write is not checked.
        await store.rooms.setCurrentState(roomId, 'unfenced');
        expect((await other.rooms.get(roomId))?.currentStateId).toBe('unfenced');
      });

      it("a fenced write brings the room's fence up: a commit under an older epoch is refused after it", async () => {
        const room = '!rw-raise:test';
        await other.rooms.setJoinedServers(room, ['a.test'], { roomId: room, partition: 10, epoch: 50 });
        const commit = { eventId: '$rw-commit', roomId: room, payload: {}, createdTs: 1 };
        await expect(store.pendingCommits.add(commit, { partition: 10, epoch: 49 })).rejects.toBeInstanceOf(CommitFencedError);
        expect(await other.pendingCommits.get('$rw-commit')).toBeUndefined();
      });
    });
  });
}
