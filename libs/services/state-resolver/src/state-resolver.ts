// The state-resolver's parts wired together, and their subscriptions on the bus.
import { notOwned, partitionsForReplica, type Bus, type HandlerOutcome, type InboundPdu, type ReceivedMessage, type BusSubscription, type BusTopology, type CommandSpec, type RepairCommand, type RepairReply } from '@fedgate/bus';
import { FederationApi, type FederationHttpClient, type KeyRing } from '@fedgate/federation-client';
import { PartitionOwnership, type ElasticOwnership } from '@fedgate/platform';
import type { Registry } from 'prom-client';
import { CommitFencedError, type Store } from '@fedgate/store';
import { clientTransactionLog, type ClientTransactionLog } from './client-transactions';
import { EventBuilder, type ServerSigner } from './event-builder';
import { DEFAULT_GAP_FILL_LIMITS, InboundPduHandler, type GapFillLimits } from './inbound-pdus';
import { LocalEvents } from './local-events';
import { InviteChecks } from './invite-checks';
import { InviteEntry } from './invite-entry';
import { InviteRateLimit } from './invite-rate-limit';
import { MembershipHandshakes } from './membership-handshakes';
import { forPartition, PartitionCommands, type CommandEntry } from './partition-commands';
import {
  DEFAULT_INBOUND_POLICY_LIMITS,
  DEFAULT_INBOUND_QUIET_MS,
  DEFAULT_OUTBOUND_POLICY_LIMITS,
  policyServerEventsCounter,
  UnansweringPolicyServers,
  withinCommandTimeout,
  type PolicySigningLimits,
} from './policy-server-limits';
import { PolicyServerSignatures } from './policy-server-signatures';
import { RemoteBackfill } from './remote-backfill';
import { budgetedFederation, remoteIoRefused } from './remote-budget';
import { RemoteMembership } from './remote-membership';
import { DEFAULT_RESYNC_LIMITS, PartialStateResync, type ResyncFencing, type ResyncLimits, type ResyncOutcome } from './partial-state-resync';
import { DEFAULT_PARKING_LIMITS, RoomParking, type ParkingLimits } from './room-parking';
import { RoomLocks } from './room-locks';
import { RoomReader } from './room-reader';
import { RoomTimeline, type RepairOutcome } from './room-timeline';
import { OwnedRoomCache } from './owned-room-cache';
import { RunWrites } from './run-writes';

export interface StateResolverDeps {
  store: Store;
  bus: Bus;
  topology: BusTopology;
  identity: ServerSigner;
  federation: Pick<FederationHttpClient, 'getJson' | 'putJson' | 'postJson'>;
  keyRing: KeyRing;
  /** Which room partitions this replica consumes (default: all); `config.replicas.stateResolver`, validated at load. */
  replica?: { index: number; count: number };
  /** Elastic ownership instead of `replica`: partitions leased in the store, shared with the other live replicas. */
  elastic?: ElasticOwnership;
  /**
   * This process is the only one writing rooms to the store (the embedded gateway): what it wrote can be remembered
   * across commands, e.g. which events redactions claim (issue 19: no read of an accepted event's claims otherwise).
   */
  soleWriter?: boolean;
  /**
   * Reads of what this process wrote or read (rooms, extremities, joined servers, partial state, event records, events
   * the store does not hold) answered from memory (owned-room-cache.ts). Default: `soleWriter` (and not elastic: an
   * elastic replica has the cache by its leases). Only for a store nothing else writes while this process runs.
   */
  ownerReadCache?: boolean;
  gapFill?: GapFillLimits;
  /** Time budget of PDUs parked while they wait on a remote server. */
  parking?: Partial<ParkingLimits>;
  transactions?: ClientTransactionLog;
  /** How often a commit that failed here (store or bus outage) is tried again when no other work comes to its room. */
  repairIntervalMs?: number;
  /** Invites accepted per remote server (default DEFAULT_INVITE_RATE_LIMIT). */
  inviteRateLimit?: InviteRateLimit;
  /** Requests to rooms' policy servers: for our own events (`outbound`) and for received ones (`inbound`, within the parking budget). */
  policyServer?: { outbound?: Partial<PolicySigningLimits>; inbound?: Partial<PolicySigningLimits>; inboundQuietMs?: number };
  /** The process's Prometheus registry (counters of policy-server outcomes); none: counted in a private one. */
  metrics?: Registry | null;
  /** Background resync of rooms joined with partial state. */
  resync?: Partial<ResyncLimits>;
  /** Told when a partial-state resync fails (it is retried with backoff); e.g. the service's logger. */
  onResyncFailure?: (err: unknown) => void;
  /** Told when a partial-state room's full state is in (with the events its re-check rejected). */
  onResynced?: (outcome: ResyncOutcome) => void;
  /** A commit the store refused for a stale lease (elastic ownership): counted by the module's metric. */
  onCommitFenced?: (error: CommitFencedError) => void;
  /** A room command this replica received for a partition whose lease it does not hold, left to the owner (elastic). */
  onCommandDeclined?: (partition: number) => void;
}

const DEFAULT_REPAIR_INTERVAL_MS = 15_000;

/** The one holding of every room by the sole writer. */
const SOLE_WRITER_HOLDING = 0;
/** The embedded gateway keeps fewer events than a distributed replica (its memory is the whole gateway's). */
const SOLE_WRITER_CACHE_LIMITS = { rooms: 10_000, events: 2_000 };

export class StateResolver {
  readonly timeline: RoomTimeline;
  readonly reader: RoomReader;
  /** The full inbound path (remote calls within the current parking budget, if any). */
  readonly inbound: InboundPduHandler;
  readonly parking: RoomParking;
  readonly localEvents: LocalEvents;
  readonly handshakes: MembershipHandshakes;
  readonly remoteMembership: RemoteMembership;
  readonly backfill: RemoteBackfill;
  readonly resync: PartialStateResync;
  private subscriptions: BusSubscription[] = [];
  private readonly locks = new RoomLocks();
  private repairTimer: NodeJS.Timeout | undefined;
  private ownership: PartitionOwnership | undefined;
  private readonly partitionSubscriptions = new Map<number, BusSubscription[]>();
  private servedByPartition: PartitionCommands | undefined;
  /** Elastic: reads of what only the partition's lease holder writes, from memory while the lease is held (owned-room-cache.ts); the sole writer: always. */
  private readonly ownedRooms: OwnedRoomCache | undefined;
  private readonly deps: StateResolverDeps;
  /** A run's commits held until its end; every part of this service reads and writes through its overlay of the store. */
  private readonly runWrites: RunWrites;
  /** Partitions whose held commits were lost (their write failed): the runs that held them are redelivered. */
  private readonly lostRuns = new Set<number>();

  constructor(given: StateResolverDeps) {
    const locks = this.locks;
    // The owner's read cache sees every write that reaches the store; a run's held writes reach it at the run's end.
    // The sole writer (the embedded gateway) holds every room for good: one holding, never handed over (issue 19:
    // ~5 of its ~10 store reads per inbound PDU were of its own writes).
    this.ownedRooms = given.elastic
      ? new OwnedRoomCache((roomId) => this.holdingOf(roomId))
      : (given.ownerReadCache ?? given.soleWriter)
        ? new OwnedRoomCache(() => SOLE_WRITER_HOLDING, SOLE_WRITER_CACHE_LIMITS, true)
        : undefined;
    const cached = this.ownedRooms ? this.ownedRooms.wrap(given.store) : given.store;
    this.runWrites = new RunWrites(cached, (roomIds) => {
      this.timeline.dropHeld(roomIds);
      for (const roomId of roomIds) this.lostRuns.add(given.topology.inboundPdu.partitionOf(roomId));
    });
    const deps = { ...given, store: this.runWrites.store };
    this.deps = deps;
    const api = new FederationApi(deps.federation);
    const builder = new EventBuilder(deps.store, deps.identity);
    const transactions = deps.transactions ?? clientTransactionLog(deps.store);
    const fencing = deps.elastic
      ? {
          fenceFor: (roomId: string) => this.ownership?.fence(deps.topology.roomLog.partitionOf(roomId)),
          refused: (error: CommitFencedError) => {
            deps.elastic?.logger.warn({ roomId: error.roomId, eventId: error.eventId, epoch: error.epoch, roomEpoch: error.roomEpoch, reason: error.message }, 'commit refused: partition lease lost');
            deps.onCommitFenced?.(error);
          },
        }
      : undefined;
    this.timeline = new RoomTimeline(deps.store, deps.bus, deps.topology, transactions, fencing, this.runWrites, deps.soleWriter === true && !deps.elastic);
    this.reader = new RoomReader(deps.store);
    const gapFill = deps.gapFill ?? DEFAULT_GAP_FILL_LIMITS;
    const parking = { ...DEFAULT_PARKING_LIMITS, ...deps.parking };
    const serverName = deps.identity.serverName;
    const inboundPolicy = { ...DEFAULT_INBOUND_POLICY_LIMITS, ...deps.policyServer?.inbound };
    const unanswering = new UnansweringPolicyServers(deps.policyServer?.inboundQuietMs ?? DEFAULT_INBOUND_QUIET_MS);
    const policyCounter = policyServerEventsCounter(deps.metrics ?? undefined);
    const budgeted = budgetedFederation(deps.federation, parking.perCallMs);
    const budgetedApi = new FederationApi(budgeted);
    this.inbound = new InboundPduHandler(deps.store, this.timeline, locks, deps.keyRing, budgetedApi, serverName, gapFill, new PolicyServerSignatures(deps.store, budgeted, serverName, inboundPolicy, unanswering, policyCounter));
    // A received event that needs a new policy-server signature is parked like one that needs its gap filled.
    const refused = remoteIoRefused();
    const partitionPath = new InboundPduHandler(deps.store, this.timeline, locks, deps.keyRing, new FederationApi(refused), serverName, gapFill, new PolicyServerSignatures(deps.store, refused, serverName, inboundPolicy, unanswering, policyCounter));
    this.parking = new RoomParking(deps.bus, deps.topology, partitionPath, this.inbound, locks, parking);
    const outboundLimits = withinCommandTimeout({ ...DEFAULT_OUTBOUND_POLICY_LIMITS, ...deps.policyServer?.outbound }, deps.topology.createEvent.command.timeoutMs);
    const outboundPolicy = new PolicyServerSignatures(deps.store, deps.federation, serverName, outboundLimits, undefined, policyCounter);
    this.localEvents = new LocalEvents(deps.store, this.timeline, locks, builder, deps.keyRing, api, transactions, serverName, outboundPolicy);
    const invites = new InviteChecks(deps.store, this.timeline, deps.keyRing, deps.identity.serverName, deps.inviteRateLimit);
    // The resident's handshakes (send_join / send_leave / send_knock) wait on the policy server within their command's timeout.
    const handshakePolicy = new PolicyServerSignatures(deps.store, deps.federation, serverName, withinCommandTimeout(inboundPolicy, deps.topology.sendMembership.command.timeoutMs), unanswering, policyCounter);
    const inviteEntry = new InviteEntry(deps.store, this.inbound, deps.bus, deps.topology);
    this.handshakes = new MembershipHandshakes(deps.store, this.timeline, locks, builder, deps.identity.serverName, deps.identity.signingKey, invites, handshakePolicy, inviteEntry);
    // Elastic: a resync works under the lease holding it began under (fresh), and is stopped when the partition goes.
    const resyncFencing: ResyncFencing | undefined = deps.elastic
      ? {
          fenceFor: (roomId: string) => {
            const epoch = this.holdingOf(roomId);
            return epoch === undefined ? undefined : { partition: deps.topology.roomLog.partitionOf(roomId), epoch };
          },
          refused: (error) => {
            deps.elastic?.logger.warn({ roomId: error.roomId, step: error.step, epoch: error.epoch, heldEpoch: error.roomEpoch, reason: error.message }, 'partial-state resync write refused: partition lease lost');
            deps.onCommitFenced?.(error);
          },
        }
      : undefined;
    this.resync = new PartialStateResync(deps.store, this.timeline, locks, deps.keyRing, deps.federation, deps.identity.serverName, { ...DEFAULT_RESYNC_LIMITS, ...deps.resync }, deps.onResyncFailure, deps.onResynced, resyncFencing);
    this.remoteMembership = new RemoteMembership(deps.store, this.timeline, locks, deps.keyRing, api, deps.identity, this.localEvents, (roomId) => this.resync.start(roomId));
    this.backfill = new RemoteBackfill(deps.store, locks, deps.keyRing, api, deps.identity.serverName);
  }

  /**
   * Finishes the commits cut short (a crash, a store or bus outage between the writes of one event): of one
   * room, or of every room of the given partitions (default: all this replica owns). Runs on start and when
   * an elastic replica takes a partition over; callable on demand (a command that failed mid-commit also
   * leaves its room to be finished before the room's next work).
   */
  async repair(roomId?: string, partitions: number[] = this.ownedPartitions()): Promise<Record<string, RepairOutcome>> {
    const { topology } = this.deps;
    const owned = new Set(partitions);
    const rooms = roomId !== undefined ? [roomId] : (await this.timeline.roomsWithPendingCommits()).filter((r) => owned.has(topology.roomLog.partitionOf(r)));
    const outcomes: Record<string, RepairOutcome> = {};
    for (const room of rooms) outcomes[room] = await this.locks.run(room, () => this.timeline.settlePending(room));
    return outcomes;
  }

  /** The operator's `cmd.repair` (`fedgate rooms repair`): one room, or every room of one partition this replica owns. */
  async onRepairCommand(command: RepairCommand): Promise<RepairReply> {
    const { topology } = this.deps;
    const partition = command.partition;
    if (!Number.isInteger(partition) || !this.ownedPartitions().includes(partition)) {
      return { ok: false, errcode: 'M_INVALID_PARAM', error: `partition ${String(partition)} is not served here`, status: 400 };
    }
    if (command.roomId !== undefined && (typeof command.roomId !== 'string' || topology.roomLog.partitionOf(command.roomId) !== partition)) {
      return { ok: false, errcode: 'M_INVALID_PARAM', error: `room ${String(command.roomId)} is not of partition ${partition}`, status: 400 };
    }
    try {
      const outcomes = await this.repair(command.roomId, [partition]);
      return { ok: true, rooms: Object.entries(outcomes).map(([roomId, o]) => ({ roomId, finished: o.finished, abandoned: o.abandoned })) };
    } catch (err) {
      // The store or the bus is still out: the commits stay pending (retried on the timer and on the next work).
      return { ok: false, errcode: 'M_UNKNOWN', error: `repair failed: ${(err as Error).message}`, status: 503 };
    }
  }

  /**
   * Finishes cut-short commits, then serves the commands and consumes the inbound and parked partitions this
   * replica owns (a static share, or leased ones when elastic: each finished and started as it is acquired).
   */
  async start(): Promise<void> {
    const { bus, topology, elastic } = this.deps;
    this.parking.resume();
    if (elastic) {
      this.ownership = new PartitionOwnership({
        ...elastic,
        partitions: topology.roomPartitions,
        onAcquire: (p) => this.startPartition(p),
        onRelease: (p) => this.stopPartition(p),
      });
      await this.ownership.start();
    } else {
      const replica = this.deps.replica ?? { index: 0, count: 1 };
      await this.repair();
      // With one replica every command subject is served; with several, each replica serves the room partitions
      // whose inbound PDUs it consumes, so one process (and its room locks) orders all of a room's work.
      const owned = partitionsForReplica(replica.index, replica.count, topology.roomPartitions);
      await this.resumeResyncs(owned);
      for (const { command, handler } of this.commands()) {
        const specs = replica.count === 1 ? [command] : owned.map((p) => forPartition(command, p));
        for (const spec of specs) this.subscriptions.push(await bus.serve(spec, handler));
      }
      // Remote I/O never runs on the ordered partition consumer: such PDUs are parked (room-parking.ts).
      for (const p of owned) {
        this.subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(p), (m) => this.onPartitionMessage(m), { beforeSettle: () => this.settleRun(p) }));
        this.subscriptions.push(await bus.consume(topology.consumers.stateResolverParked(p), (m) => this.parking.onParkedMessage(m)));
      }
    }
    // A send that failed mid-commit during an outage goes out once the outage is over, even if nothing else
    // happens in its room; until then it stays in store.pendingCommits.
    this.repairTimer = setInterval(() => void this.repairUnsettled(), this.deps.repairIntervalMs ?? DEFAULT_REPAIR_INTERVAL_MS);
    this.repairTimer.unref();
  }

  /**
   * A room partition's PDU. The room log entries of a run the bus hands over go out together at its last message
   * (one bus commit and one removal of their pending records instead of two commits per PDU: issue 19).
   */
  async onPartitionMessage(message: ReceivedMessage<InboundPdu>): Promise<HandlerOutcome> {
    try {
      return await this.parking.onPartitionMessage(message);
    } finally {
      // A failure leaves the rooms to the repair (their pending records stay), as a failed publish always did.
      if (message.moreInHand !== true) await this.timeline.flushAll().catch(() => undefined);
    }
  }

  /**
   * Before the bus settles a run of the partition (its end, or a nak or a stop cutting it short): what the run held is
   * written and its room log entries go out; if commits it held were lost, the run's acks become naks (redelivered).
   */
  private async settleRun(p: number): Promise<void> {
    await this.timeline.flushAll().catch(() => undefined);
    await this.runWrites.flush().catch(() => undefined);
    if (this.lostRuns.delete(p)) throw new Error(`commits held for a run of partition ${p} were not written`);
  }

  /** Rooms of these partitions joined with partial state whose resync a stop or a crash cut short: resumed in the background. */
  private async resumeResyncs(partitions: number[]): Promise<void> {
    const owned = new Set(partitions);
    await this.resync.resumeAll((roomId) => owned.has(this.deps.topology.roomLog.partitionOf(roomId)));
  }

  /** Only rooms of partitions owned now: another replica's room (or one handed over) is that replica's to finish, under its locks. */
  private async repairUnsettled(): Promise<void> {
    const owned = new Set(this.ownedPartitions());
    for (const roomId of this.timeline.unsettled()) {
      if (!owned.has(this.deps.topology.roomLog.partitionOf(roomId))) continue;
      await this.locks.run(roomId, () => this.timeline.recover(roomId)).catch(() => undefined);
    }
  }

  /** The epoch of this replica's lease on the room's partition while it holds it fresh; undefined otherwise. */
  private holdingOf(roomId: string): number | undefined {
    const p = this.deps.topology.roomLog.partitionOf(roomId);
    return this.ownership?.owns(p) ? this.ownership.fence(p)?.epoch : undefined;
  }

  /** The partitions this replica works on now (all of a static share; the leased ones when elastic). */
  ownedPartitions(): number[] {
    if (this.ownership) return this.ownership.owned();
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    return partitionsForReplica(replica.index, replica.count, this.deps.topology.roomPartitions);
  }

  private partitionCommands(): PartitionCommands {
    const holder = { owns: (p: number) => this.ownership?.owns(p) === true, ownsAfterRenewal: async (p: number) => (await this.ownership?.ownsAfterRenewal(p)) === true };
    this.servedByPartition ??= new PartitionCommands(this.deps.bus, this.commands(), holder, (partition, subject) => {
      this.deps.elastic?.logger.warn({ partition, subject }, 'command left to the partition\'s owner: this replica does not hold its lease (any more)');
      this.deps.onCommandDeclined?.(partition);
    });
    return this.servedByPartition;
  }

  private commands(): CommandEntry[] {
    const { topology } = this.deps;
    const entry = <Req, Res>(command: CommandSpec<Req, Res>, handler: (request: Req) => Promise<Res>) => ({ command, handler }) as unknown as CommandEntry;
    return [
      entry(topology.createEvent.command, (c) => this.localEvents.onCommand(c)),
      entry(topology.makeMembership.command, (c) => this.handshakes.makeMembership(c)),
      entry(topology.sendMembership.command, (c) => this.handshakes.sendMembership(c)),
      entry(topology.receiveInvite.command, (c) => this.handshakes.receiveInvite(c)),
      entry(topology.remoteMembership.command, (c) => this.remoteMembership.onCommand(c)),
      entry(topology.backfill.command, (c) => this.backfill.onCommand(c)),
      entry(topology.repair.command, (c) => this.onRepairCommand(c)),
    ];
  }

  /**
   * Elastic: finishes the partition's cut-short commits (its previous owner may have died mid-commit), then
   * serves its commands and consumes its inbound and parked PDUs, each fenced — a replica that stalled past
   * its lease (and may have lost the partition) neither answers a command nor handles a PDU of it.
   */
  private async startPartition(p: number): Promise<void> {
    const { bus, topology } = this.deps;
    const owns = () => this.ownership?.owns(p) === true;
    // From here on a commit made under an older holding of the partition is refused by the store, in every room
    // of it that has a fence, even one this replica has not committed in yet.
    const fence = this.ownership?.fence(p);
    if (fence) await this.deps.store.pendingCommits.raiseFence(fence);
    await this.repair(undefined, [p]);
    await this.resumeResyncs([p]);
    const subscriptions: BusSubscription[] = [];
    this.partitionSubscriptions.set(p, subscriptions);
    try {
      subscriptions.push(...(await this.partitionCommands().serve(p)));
      subscriptions.push(
        await bus.consume(topology.consumers.stateResolverInbound(p), (m) => (owns() ? this.onPartitionMessage(m) : notOwned(1_000)), { beforeSettle: () => this.settleRun(p) }),
      );
      subscriptions.push(await bus.consume(topology.consumers.stateResolverParked(p), (m) => (owns() ? this.parking.onParkedMessage(m) : notOwned(1_000))));
    } catch (err) {
      // The partition is given back: nothing of it may stay subscribed here.
      await this.stopPartition(p);
      throw err;
    }
  }

  private async stopPartition(p: number): Promise<void> {
    // Its rooms' resyncs stop here, writing nothing more: the rooms stay partial and the next owner resumes them.
    this.resync.stopRooms((roomId) => this.deps.topology.roomLog.partitionOf(roomId) === p);
    const subscriptions = this.partitionSubscriptions.get(p) ?? [];
    this.partitionSubscriptions.delete(p);
    await Promise.all(subscriptions.map((s) => s.stop()));
    this.ownedRooms?.forget((roomId) => this.deps.topology.roomLog.partitionOf(roomId) === p);
    // Before the next owner works there: its repair would publish them again, after its own entries.
    await this.timeline.flushAll().catch(() => undefined);
  }

  async stop(): Promise<void> {
    clearInterval(this.repairTimer);
    this.parking.stop();
    this.resync.stop();
    await this.ownership?.stop();
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.stop()));
    // Room log entries still waiting go out now; if that fails their pending records finish them on the next start.
    await this.timeline.flushAll().catch(() => undefined);
  }
}
