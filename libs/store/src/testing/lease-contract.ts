// The lease contract every store adapter passes: one holder at a time, expiry frees a lease a dead holder
// kept, release only by the holder.
import type { Store } from '../ports/store';

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
  });
}
