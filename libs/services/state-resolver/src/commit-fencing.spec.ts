// Issue 12, fencing at commit: a state-resolver replica that checked its partition lease, then stalled
// (SIGSTOP, a long GC) while another replica took the partition over and committed, must not commit when it
// wakes. The lease epoch is checked by the store in the very write that records the commit.
import type { ElasticOwnership } from '@fedgate/platform';
import { CommitFencedError, type Store } from '@fedgate/store';
import pino from 'pino';
import { StateResolver } from './state-resolver';
import { TestNetwork, type TestServer } from './testing/test-server';

const TTL_MS = 5_000;

/** A store handle whose pendingCommits.add can be made to stall once (`arm`): the stall between check and write. */
function stallingAtCommit(store: Store): { store: Store; arm: () => { stalled: Promise<void>; resume: () => void } } {
  let stall: { reached: () => void; gate: Promise<void> } | undefined;
  const pendingCommits = new Proxy(store.pendingCommits, {
    get: (target, key) => {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      if (key !== 'add') return (value as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const armed = stall;
        stall = undefined;
        if (armed) {
          armed.reached();
          await armed.gate;
        }
        return (value as (...a: unknown[]) => Promise<void>).apply(target, args);
      };
    },
  });
  const arm = () => {
    let resume!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((r) => (resume = r));
    const stalled = new Promise<void>((r) => (reached = r));
    stall = { reached, gate };
    return { stalled, resume };
  };
  return { store: { ...store, pendingCommits } as Store, arm };
}

describe('fencing at commit (issue 12): a replica that lost its partition lease while stalled cannot commit', () => {
  let network: TestNetwork;
  let a: TestServer;
  const alice = '@alice:a.test';
  let warnings: Array<Record<string, unknown>>;
  const logger = () => pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });

  beforeEach(async () => {
    warnings = [];
    network = new TestNetwork();
    a = await network.add('a.test');
  });
  afterEach(() => network.close());

  function replica(instanceId: string, clock: { now: number }, store: Store = a.store): StateResolver {
    const elastic: ElasticOwnership = { leases: a.store.leases, scope: 'test/state-resolver', instanceId, ttlMs: TTL_MS, logger: logger(), now: () => clock.now };
    return a.offlineProcess(network, { store, elastic });
  }
  const message = (roomId: string, body: string, txnId: string) => ({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body }, txnId });

  it('refuses the stale commit after the new owner committed in the room, keeps nothing of it, and says why', async () => {
    const roomId = await a.createRoom(alice);
    const oldClock = { now: 1_000_000 };
    const stalling = stallingAtCommit(a.store);
    const stale = replica('sr-stale', oldClock, stalling.store);
    await stale.start();
    const successor = replica('sr-successor', { now: oldClock.now + 2 * TTL_MS });
    const stall = stalling.arm();
    try {
      // The stale replica owns the partition, checks it, builds its event, and stalls just before the commit's write.
      const staleSend = stale.localEvents.create(message(roomId, 'from the stalled replica', 'txn-stale'));
      await stall.stalled;
      // Meanwhile its leases expire; the successor takes the partition over and commits in the room.
      await successor.start();
      expect(successor.ownedPartitions()).toContain(a.topology.roomLog.partitionOf(roomId));
      const fresh = await successor.localEvents.create(message(roomId, 'from the new owner', 'txn-fresh'));

      stall.resume();
      const refused = await staleSend.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(CommitFencedError);
      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([fresh.eventId]);
      expect(await a.store.pendingCommits.list(roomId)).toEqual([]);
      expect(await a.store.clientTransactions.get(alice, 'txn-stale')).toBeUndefined();
      expect(warnings).toContainEqual(expect.objectContaining({ msg: 'commit refused: partition lease lost', roomId, reason: expect.stringContaining('newer owner') }));
    } finally {
      stall.resume();
      await successor.stop();
      await stale.stop();
    }
  });

  it('refuses it even before the new owner committed there: taking the partition over raises the fence of its rooms', async () => {
    const roomId = await a.createRoom(alice);
    const oldClock = { now: 2_000_000 };
    const stalling = stallingAtCommit(a.store);
    const stale = replica('sr-stale-2', oldClock, stalling.store);
    await stale.start();
    const successor = replica('sr-successor-2', { now: oldClock.now + 2 * TTL_MS });
    let stalled: { stalled: Promise<void>; resume: () => void } | undefined;
    try {
      // A first commit under the stale replica's lease gives the room its fence.
      const first = await stale.localEvents.create(message(roomId, 'fenced once', 'txn-first'));
      stalled = stalling.arm();
      const staleSend = stale.localEvents.create(message(roomId, 'too late', 'txn-late'));
      await stalled.stalled;
      await successor.start();
      stalled.resume();
      await expect(staleSend).rejects.toBeInstanceOf(CommitFencedError);
      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([first.eventId]);
    } finally {
      stalled?.resume();
      await successor.stop();
      await stale.stop();
    }
  });

  // Found by elastic-replicas.spec.ts: a v12 room's ID comes from its create event, so the replica serving the
  // create command (addressed to a proposed room ID's partition) may not own the new room's partition.
  it("commits a new room's create event whichever replica serves the command: nobody else can commit in a room that does not exist yet", async () => {
    const clock = { now: 3_000_000 };
    const first = replica('sr-one', clock);
    const second = replica('sr-two', clock);
    await first.start();
    await second.start();
    // The first hands the second its share, which the second then takes.
    const rebalance = (r: StateResolver) => (r as unknown as { ownership: { rebalance(): Promise<void> } }).ownership.rebalance();
    await rebalance(first);
    await rebalance(second);
    try {
      const others = new Set(second.ownedPartitions());
      expect(others.size).toBeGreaterThan(0);
      let landedElsewhere = false;
      for (let i = 0; i < 40 && !landedElsewhere; i++) {
        const created = await first.localEvents.create({ roomId: '', sender: alice, type: 'm.room.create', stateKey: '', content: { room_version: '12' }, txnId: `create-${i}` });
        landedElsewhere = others.has(a.topology.roomLog.partitionOf(created.roomId));
      }
      expect(landedElsewhere).toBe(true);
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
