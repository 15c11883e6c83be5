// Chaos finding (kill -9 of federation-ingress): the origin lease of a replica that died mid-transaction held the
// origin for the whole 120 s TTL, every retry answered 429. The lease is now short and renewed while held.
import type { LeaseRepository, LiveLease } from '@fedgate/store';
import { DEFAULT_INGRESS_OPTIONS } from '../ingress-options';
import { OriginLock, originLeaseName } from './origin-lock';

/** Leases in memory with the port's semantics; time is whatever `now` the callers pass (jest's fake clock). */
class FakeLeases implements LeaseRepository {
  readonly held = new Map<string, { holder: string; expiresTs: number }>();
  renewals = 0;

  async tryAcquire(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    const lease = this.held.get(name);
    if (lease && lease.holder !== holder && lease.expiresTs > now) return false;
    this.held.set(name, { holder, expiresTs: now + ttlMs });
    return true;
  }
  async acquireWithEpoch(name: string): Promise<number | undefined> {
    throw new Error(`not used by the origin lock (${name})`);
  }
  async release(name: string, holder: string): Promise<void> {
    if (this.held.get(name)?.holder === holder) this.held.delete(name);
  }
  async renewMany(names: readonly string[], holder: string, ttlMs: number, now = Date.now()): Promise<string[]> {
    this.renewals++;
    const renewed = names.filter((name) => this.held.get(name)?.holder === holder);
    for (const name of renewed) this.held.set(name, { holder, expiresTs: now + ttlMs });
    return renewed;
  }
  async live(prefix: string): Promise<LiveLease[]> {
    return [...this.held].filter(([name]) => name.startsWith(prefix)).map(([name, lease]) => ({ name, ...lease }));
  }
}

/** A replica: its own lock over the shared leases; `die()` stops everything it would still do (kill -9). */
function replica(shared: FakeLeases, ttlMs = DEFAULT_INGRESS_OPTIONS.originLockTtlMs) {
  let dead = false;
  const port: LeaseRepository = shared;
  const leases: LeaseRepository = {
    tryAcquire: (...args) => port.tryAcquire(...args),
    acquireWithEpoch: (...args) => port.acquireWithEpoch(...args),
    release: (...args) => port.release(...args),
    renewMany: (...args) => (dead ? new Promise<string[]>(() => undefined) : port.renewMany(...args)),
    live: (...args) => port.live(...args),
  };
  return { lock: new OriginLock(leases, ttlMs), die: () => (dead = true) };
}

describe('origin lock: short lease renewed while the transaction runs (chaos finding: killed ingress held the origin 2 minutes)', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('the default TTL frees the origin of a replica killed mid-transaction within 15 s', () => {
    expect(DEFAULT_INGRESS_OPTIONS.originLockTtlMs).toBeLessThanOrEqual(15_000);
  });

  it('a replica killed mid-transaction (its renewals stop) frees the origin once the short TTL has passed', async () => {
    const shared = new FakeLeases();
    const killed = replica(shared);
    const survivor = replica(shared);
    expect(await killed.lock.tryAcquire('b.test')).toBeDefined();
    killed.die();
    expect(await survivor.lock.tryAcquire('b.test')).toBeUndefined();
    await jest.advanceTimersByTimeAsync(DEFAULT_INGRESS_OPTIONS.originLockTtlMs + 1);
    const release = await survivor.lock.tryAcquire('b.test');
    expect(release).toBeDefined();
    await release!();
  });

  it('a live replica processing a transaction longer than the TTL keeps the origin: no other replica takes it mid-transaction', async () => {
    const shared = new FakeLeases();
    const ttlMs = 12_000;
    const working = replica(shared, ttlMs);
    const other = replica(shared, ttlMs);
    const release = await working.lock.tryAcquire('b.test');
    expect(release).toBeDefined();
    // Five TTLs of work, the other replica asking every second.
    for (let elapsed = 0; elapsed < 5 * ttlMs; elapsed += 1_000) {
      await jest.advanceTimersByTimeAsync(1_000);
      expect(await other.lock.tryAcquire('b.test')).toBeUndefined();
    }
    expect(shared.renewals).toBeGreaterThanOrEqual(5 * 3 - 1);
    await release!();
    expect(shared.held.has(originLeaseName('b.test'))).toBe(false);
    // Released: no renewal runs any more, and the other replica takes the origin at once.
    const renewals = shared.renewals;
    await jest.advanceTimersByTimeAsync(5 * ttlMs);
    expect(shared.renewals).toBe(renewals);
    const releaseOther = await other.lock.tryAcquire('b.test');
    expect(releaseOther).toBeDefined();
    await releaseOther!();
  });

  it('a holder that lost its lease (another replica took it while this one stalled) stops renewing and gives back nothing of the new holding', async () => {
    const shared = new FakeLeases();
    const lost: string[] = [];
    const stalled = new OriginLock(shared, 12_000, { onLost: (origin) => lost.push(origin) });
    const release = await stalled.tryAcquire('b.test');
    // This replica stalled past the expiry (SIGSTOP, a long GC) and replica-2 took the origin meanwhile.
    shared.held.set(originLeaseName('b.test'), { holder: 'replica-2', expiresTs: Date.now() + 12_000 });
    await jest.advanceTimersByTimeAsync(4_001);
    expect(lost).toEqual(['b.test']);
    const renewals = shared.renewals;
    await jest.advanceTimersByTimeAsync(3 * 12_000);
    expect(shared.renewals).toBe(renewals);
    expect(shared.held.get(originLeaseName('b.test'))?.holder).toBe('replica-2');
    // Its transaction still runs here: the local busy mark keeps a retry reaching this replica out until it ends.
    expect(await stalled.tryAcquire('b.test')).toBeUndefined();
    await release!();
    expect(shared.held.get(originLeaseName('b.test'))?.holder).toBe('replica-2');
  });

  it('a renewal the store fails is tried again on the next tick: the lease, untaken, stays held', async () => {
    const shared = new FakeLeases();
    let failures = 1;
    const flaky: LeaseRepository = {
      tryAcquire: (...args) => shared.tryAcquire(...args),
      acquireWithEpoch: (name) => shared.acquireWithEpoch(name),
      release: (...args) => shared.release(...args),
      renewMany: (...args) => (failures-- > 0 ? Promise.reject(new Error('store unreachable')) : shared.renewMany(...args)),
      live: (prefix) => shared.live(prefix),
    };
    const lock = new OriginLock(flaky, 12_000);
    const other = replica(shared, 12_000);
    const release = await lock.tryAcquire('b.test');
    await jest.advanceTimersByTimeAsync(4 * 12_000);
    expect(await other.lock.tryAcquire('b.test')).toBeUndefined();
    await release!();
  });

  it('a transaction running past the longest hold (stuck) stops renewing: the origin is free to other replicas a TTL later', async () => {
    const shared = new FakeLeases();
    const tooLong: string[] = [];
    const stuck = new OriginLock(shared, 12_000, { maxHoldMs: 60_000, onHeldTooLong: (origin) => tooLong.push(origin) });
    const other = replica(shared, 12_000);
    const release = await stuck.tryAcquire('b.test');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(await other.lock.tryAcquire('b.test')).toBeUndefined();
    await jest.advanceTimersByTimeAsync(12_000 + 4_000);
    expect(tooLong).toEqual(['b.test']);
    const releaseOther = await other.lock.tryAcquire('b.test');
    expect(releaseOther).toBeDefined();
    await release!();
    expect(shared.held.get(originLeaseName('b.test'))).toBeDefined();
    await releaseOther!();
  });
});
