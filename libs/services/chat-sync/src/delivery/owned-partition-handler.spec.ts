import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PartitionOwnership } from '@fedgate/platform';
import { openSqliteStore, type LeaseRepository } from '@fedgate/store';
import { ownedPartitionHandler, type PartitionLeases } from './owned-partition-handler';

/** A partition's lease as the ownership rounds leave it: fresh, stale (renewal overdue, still held), or gone. */
class FakeLeases implements PartitionLeases {
  state: 'fresh' | 'stale' | 'released' = 'fresh';
  owns(): boolean {
    return this.state === 'fresh';
  }
  owned(): number[] {
    return this.state === 'released' ? [] : [3];
  }
}

const tick = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ownedPartitionHandler (chaos-stall: room-log messages dead-lettered while the store was away)', () => {
  it('acts at once while the lease is fresh', async () => {
    const leases = new FakeLeases();
    const handled: string[] = [];
    const handler = ownedPartitionHandler<string>(leases, 3, async (data) => void handled.push(data), 5);
    expect(await handler({ data: 'e1' })).toBeUndefined();
    expect(handled).toEqual(['e1']);
  });

  // The failed chaos run: chat-sync's store client stalled ~60 s, its ownership rounds failed, the room-log leases went
  // stale while still held, and each message was naked at once: ten naks in ten seconds reached maxDeliver and the
  // message went to dead letters (Bob's first message after the fault never reached the bridge).
  it('holds a message while the lease is stale but still held (no nak burning a delivery), and handles it once renewed', async () => {
    const leases = new FakeLeases();
    leases.state = 'stale';
    const handled: string[] = [];
    const handler = ownedPartitionHandler<string>(leases, 3, async (data) => void handled.push(data), 5);
    let outcome: unknown = 'pending';
    const settled = handler({ data: 'e1' }).then((o) => (outcome = o));
    // Many times the old nak delay's worth of deliveries would have gone by; the message is still held.
    await tick(100);
    expect(outcome).toBe('pending');
    expect(handled).toEqual([]);
    leases.state = 'fresh';
    await settled;
    expect(outcome).toBeUndefined();
    expect(handled).toEqual(['e1']);
  });

  it('gives the message back (nak, for the new owner) once the stale partition is lost or handed over', async () => {
    const leases = new FakeLeases();
    leases.state = 'stale';
    const handled: string[] = [];
    const handler = ownedPartitionHandler<string>(leases, 3, async (data) => void handled.push(data), 5);
    let outcome: unknown = 'pending';
    const settled = handler({ data: 'e1' }).then((o) => (outcome = o));
    await tick();
    expect(outcome).toBe('pending');
    leases.state = 'released';
    await settled;
    expect(outcome).toEqual({ kind: 'nak', delayMs: 1_000 });
    expect(handled).toEqual([]);
  });

  it('naks at once a message of a partition not held here (another replica owns it)', async () => {
    const leases = new FakeLeases();
    leases.state = 'released';
    const handler = ownedPartitionHandler<string>(leases, 3, async () => undefined, 5);
    expect(await handler({ data: 'e1' })).toEqual({ kind: 'nak', delayMs: 1_000 });
  });
});

describe('ownedPartitionHandler with a real PartitionOwnership whose store goes away (chaos-stall)', () => {
  it('holds the message through failed rounds past the lease expiry, and handles it once a round gets through', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-chaos-stall-'));
    const store = openSqliteStore(path.join(dir, 'store.sqlite'));
    let storeAway = false;
    const away = () => {
      if (storeAway) throw new Error('connection 5 to 127.0.0.1:44665 closed');
    };
    const leases: LeaseRepository = {
      acquireWithEpoch: async (...args) => (away(), store.leases.acquireWithEpoch(...args)),
      tryAcquire: async (...args) => (away(), store.leases.tryAcquire(...args)),
      release: async (...args) => (away(), store.leases.release(...args)),
      renewMany: async (...args) => (away(), store.leases.renewMany(...args)),
      live: async (...args) => (away(), store.leases.live(...args)),
    };
    let clock = 1_000_000;
    const ownership = new PartitionOwnership({
      leases,
      scope: 'fg/chat-sync',
      instanceId: 'cs-1',
      partitions: 4,
      ttlMs: 10_000,
      renewMs: 1e9,
      now: () => clock,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      onAcquire: async () => undefined,
      onRelease: async () => undefined,
    });
    try {
      await ownership.start();
      expect(ownership.owns(2)).toBe(true);
      const handled: string[] = [];
      const handler = ownedPartitionHandler<string>(ownership, 2, async (data) => void handled.push(data), 5);

      storeAway = true;
      clock += 60_000; // rounds fail for a minute: the lease ran out by this replica's clock, still held here
      await ownership.rebalance();
      expect(ownership.owns(2)).toBe(false);
      let outcome: unknown = 'pending';
      const settled = handler({ data: 'bob-1' }).then((o) => (outcome = o));
      await tick(100);
      expect(outcome).toBe('pending'); // before the fix: a nak at once, ten of them and the message was dead

      storeAway = false;
      await ownership.rebalance(); // the store is back: the round renews the lease nobody else took
      await settled;
      expect(outcome).toBeUndefined();
      expect(handled).toEqual(['bob-1']);
    } finally {
      await ownership.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
