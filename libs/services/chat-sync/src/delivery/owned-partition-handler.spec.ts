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
