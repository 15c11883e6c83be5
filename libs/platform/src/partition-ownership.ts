// Elastic ownership of a stage's partitions: the replicas of a stage (state-resolver, egress, chat-sync)
// find each other through membership leases in the shared store and split the partitions among themselves,
// each partition held under its own lease. A replica that joins takes its share, one that leaves hands its
// share over, and a dead one's partitions are taken once its leases expire. A replica acts on a partition
// only while its lease is fresh by its own clock (`owns`), so one that was paused past the expiry
// (SIGSTOP, a long GC) stops at once when it wakes, before it learns who holds the partition now.
import { fnv1a32 } from '@fedgate/bus';
import type { CommitFence, LeaseRepository } from '@fedgate/store';

export interface OwnershipLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PartitionOwnershipOptions {
  leases: LeaseRepository;
  /** Keeps deployments sharing one store apart (the bus prefix) and names the stage: `fedgate/state-resolver`. */
  scope: string;
  instanceId: string;
  partitions: number;
  /** Lease lifetime: a dead replica's partitions move this long after its last renewal. */
  ttlMs: number;
  /** How often leases are renewed and the split recomputed (default ttlMs / 3). */
  renewMs?: number;
  /** Start working on a partition just taken. A failure gives the lease back (tried again next round). */
  onAcquire(partition: number): Promise<void>;
  /** Stop working on a partition (handed over or lost); called before its lease is given back. */
  onRelease(partition: number): Promise<void>;
  /** Every change of the owned set (for logs, metrics and the service.partitions attribute). */
  onChange?(owned: readonly number[]): void;
  logger: OwnershipLogger;
  now?: () => number;
}

/** murmur3's finaliser: FNV-1a alone scores names differing in one byte almost alike. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** What a service needs to take part in elastic ownership; the service adds its partition count and work. */
export type ElasticOwnership = Pick<PartitionOwnershipOptions, 'leases' | 'scope' | 'instanceId' | 'ttlMs' | 'renewMs' | 'logger' | 'onChange' | 'now'>;

/**
 * Rendezvous hashing with bounded load: each partition goes to the member scoring highest for it among those
 * below their fair share (ceil(partitions / members)), so shares are even and a member joining or leaving
 * moves few partitions. Every replica computes the same answer from the same member list.
 */
export function assignPartitions(members: readonly string[], partitions: number): Map<string, number[]> {
  const assigned = new Map<string, number[]>(members.map((m) => [m, []]));
  if (members.length === 0) return assigned;
  const capacity = Math.ceil(partitions / members.length);
  for (let p = 0; p < partitions; p++) {
    const ranked = members.map((member) => ({ member, score: mix32(fnv1a32(`${p}/${member}`)) })).sort((x, y) => y.score - x.score || (x.member < y.member ? -1 : 1));
    const chosen = ranked.find((r) => assigned.get(r.member)!.length < capacity)!;
    assigned.get(chosen.member)!.push(p);
  }
  return assigned;
}

export class PartitionOwnership {
  /** Partition → local time its lease runs out (as renewed by this replica). */
  private readonly held = new Map<number, number>();
  /** Partition → epoch of this replica's holding of its lease (the fencing token of what it commits). */
  private readonly epochs = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly renewMs: number;
  private roundBegan = 0;
  /** Work waiting out a stale lease (`ownsAfterRenewal`): told once a round has renewed or dropped the leases. */
  private readonly renewalWaiters = new Set<() => void>();

  constructor(private readonly options: PartitionOwnershipOptions) {
    this.now = options.now ?? Date.now;
    this.renewMs = options.renewMs ?? Math.max(100, Math.floor(options.ttlMs / 3));
  }

  private get memberPrefix(): string {
    return `${this.options.scope}/members/`;
  }

  private partitionLease(p: number): string {
    return `${this.options.scope}/partitions/${p}`;
  }

  /** Joins and takes a first share (everything when alone), then keeps renewing. */
  async start(): Promise<void> {
    await this.runRound();
    this.schedule();
  }

  /** True while this replica holds the partition's lease with time to spare: check before acting on it. */
  owns(partition: number): boolean {
    const expires = this.held.get(partition);
    // A fifth of the lifetime as margin for clock rate differences between replicas.
    return expires !== undefined && this.now() < expires - this.options.ttlMs / 5;
  }

  /**
   * Whether the partition is still this replica's, waiting out a lease gone stale for a moment (a renewal slower
   * than the margin of `owns`, on a loaded store): true at once while fresh; while stale, a round is run now (or
   * the one under way awaited) and the answer is what it left; false once the partition is lost, given up or
   * stopping. Work on the partition that finds it stale waits here instead of being put off by a fixed delay.
   */
  async ownsAfterRenewal(partition: number): Promise<boolean> {
    for (;;) {
      if (this.stopped || !this.held.has(partition)) return false;
      if (this.owns(partition)) return true;
      // Not the whole round: it may be releasing this very partition, which waits for the work waiting here.
      let timer: NodeJS.Timeout | undefined;
      let wake: () => void = () => undefined;
      const renewedOrLost = new Promise<void>((resolve) => {
        wake = resolve;
        this.renewalWaiters.add(resolve);
        // A round that could not renew (store unreachable): look again at the next one, not in a busy loop.
        timer = setTimeout(resolve, this.renewMs).unref();
      });
      void this.runRound();
      await renewedOrLost;
      clearTimeout(timer);
      this.renewalWaiters.delete(wake);
    }
  }

  /**
   * The fencing token of work on the partition, to be checked by the store in the write that commits it
   * (a pause between `owns` and that write is caught there); undefined when the partition is not held.
   */
  fence(partition: number): CommitFence | undefined {
    const epoch = this.epochs.get(partition);
    return epoch === undefined || !this.held.has(partition) ? undefined : { partition, epoch };
  }

  owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Hands every partition over and leaves; the others take them on their next round. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.tellRenewalWaiters();
    if (this.timer) clearTimeout(this.timer);
    // A round stuck on an unreachable store must not hold the shutdown past the leases' own lifetime.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.round, new Promise((resolve) => (timer = setTimeout(resolve, this.options.ttlMs)))]);
    clearTimeout(timer);
    // All at once: each partition's consumers may take a while to stop when the bus is away.
    await Promise.all(this.owned().map((p) => this.giveUp(p, 'stopping').catch((err: unknown) => this.options.logger.warn({ err, partition: p }, 'stopping work on a partition failed'))));
    await this.options.leases.release(this.memberPrefix + this.options.instanceId, this.options.instanceId).catch(() => undefined);
  }

  /** One round now (tests, and a replica that wants to rebalance at once). */
  async rebalance(): Promise<void> {
    await this.runRound();
  }

  /** Rounds at a fixed rate from when each began, so a slow store does not stretch the time between renewals. */
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runRound().finally(() => this.schedule());
    }, Math.max(0, this.renewMs - (this.now() - this.roundBegan)));
    this.timer.unref();
  }

  private runRound(): Promise<void> {
    if (!this.round) this.roundBegan = this.now();
    this.round ??= this.roundOnce()
      .catch((err: unknown) => this.options.logger.error({ err }, 'partition ownership round failed (store unreachable?); partitions whose lease runs out are no longer acted on'))
      .finally(() => (this.round = undefined));
    return this.round;
  }

  private async roundOnce(): Promise<void> {
    const { leases, instanceId, ttlMs, partitions } = this.options;
    const before = this.owned().join(',');
    // Renew first and all at once (a round under load must not outlast the leases it keeps); the time is
    // taken before the calls, so the recorded expiry is never later than the store's.
    const renewedAt = this.now();
    const owned = this.owned();
    const [member, renewedNames] = await Promise.all([
      leases.tryAcquire(this.memberPrefix + instanceId, instanceId, ttlMs, renewedAt),
      leases.renewMany(owned.map((p) => this.partitionLease(p)), instanceId, ttlMs, renewedAt),
    ]);
    if (!member) throw new Error(`membership lease ${this.memberPrefix + instanceId} is held by another process with the same instance ID`);
    const renewed = new Set(renewedNames);
    const lost: number[] = [];
    for (const p of owned) {
      if (renewed.has(this.partitionLease(p))) {
        this.held.set(p, renewedAt + ttlMs);
        continue;
      }
      this.held.delete(p);
      this.epochs.delete(p);
      lost.push(p);
    }
    this.tellRenewalWaiters();
    for (const p of lost) {
      this.options.logger.warn({ partition: p }, 'partition lease lost (this replica stalled past its expiry); another replica owns it now');
      await this.options.onRelease(p);
    }

    const members = (await leases.live(this.memberPrefix, this.now())).map((l) => l.holder);
    if (!members.includes(instanceId)) members.push(instanceId);
    const mine = new Set(assignPartitions(members.sort(), partitions).get(instanceId));
    for (const p of this.owned()) if (!mine.has(p)) await this.giveUp(p, 'rebalanced to another replica');
    for (const p of mine) {
      if (this.held.has(p) || this.stopped) continue;
      const takenAt = this.now();
      const epoch = await leases.acquireWithEpoch(this.partitionLease(p), instanceId, ttlMs, takenAt);
      if (epoch === undefined) continue;
      this.held.set(p, takenAt + ttlMs);
      this.epochs.set(p, epoch);
      try {
        await this.options.onAcquire(p);
      } catch (err) {
        this.options.logger.error({ err, partition: p }, 'starting work on a partition failed; giving it back');
        this.held.delete(p);
        this.epochs.delete(p);
        await leases.release(this.partitionLease(p), instanceId);
      }
    }
    const after = this.owned();
    if (after.join(',') !== before) {
      this.options.logger.info({ partitions: after, members: members.length }, 'partitions owned');
      this.options.onChange?.(after);
    }
  }

  private tellRenewalWaiters(): void {
    for (const wake of [...this.renewalWaiters]) wake();
    this.renewalWaiters.clear();
  }

  private async giveUp(p: number, why: string): Promise<void> {
    this.held.delete(p);
    this.epochs.delete(p);
    this.tellRenewalWaiters();
    try {
      await this.options.onRelease(p);
    } finally {
      await this.options.leases.release(this.partitionLease(p), this.options.instanceId).catch((err: unknown) =>
        this.options.logger.warn({ err, partition: p }, 'giving a partition lease back failed; it frees itself when it expires'),
      );
      this.options.logger.info({ partition: p, why }, 'partition handed over');
    }
  }
}
