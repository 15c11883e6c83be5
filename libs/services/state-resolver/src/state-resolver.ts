// The state-resolver's parts wired together, and their subscriptions on the bus.
import { partitionsForReplica, type Bus, type RepairCommand, type RepairReply, type BusSubscription, type BusTopology, type CommandSpec, type CommandSubject } from '@fedgate/bus';
import { FederationApi, type FederationHttpClient, type KeyRing } from '@fedgate/federation-client';
import type { Store } from '@fedgate/store';
import { clientTransactionLog, type ClientTransactionLog } from './client-transactions';
import { EventBuilder, type ServerSigner } from './event-builder';
import { DEFAULT_GAP_FILL_LIMITS, InboundPduHandler, type GapFillLimits } from './inbound-pdus';
import { LocalEvents } from './local-events';
import { InviteChecks } from './invite-checks';
import { InviteRateLimit } from './invite-rate-limit';
import { MembershipHandshakes } from './membership-handshakes';
import { RemoteBackfill } from './remote-backfill';
import { budgetedFederation, remoteIoRefused } from './remote-budget';
import { RemoteMembership } from './remote-membership';
import { DEFAULT_PARKING_LIMITS, RoomParking, type ParkingLimits } from './room-parking';
import { RoomLocks } from './room-locks';
import { RoomReader } from './room-reader';
import { RoomTimeline, type RepairOutcome } from './room-timeline';

export interface StateResolverDeps {
  store: Store;
  bus: Bus;
  topology: BusTopology;
  identity: ServerSigner;
  federation: Pick<FederationHttpClient, 'getJson' | 'putJson' | 'postJson'>;
  keyRing: KeyRing;
  /** Which room partitions this replica consumes (default: all). */
  replica?: { index: number; count: number };
  gapFill?: GapFillLimits;
  /** Time budget of PDUs parked while they wait on a remote server. */
  parking?: Partial<ParkingLimits>;
  transactions?: ClientTransactionLog;
  /** How often a commit that failed here (store or bus outage) is tried again when no other work comes to its room. */
  repairIntervalMs?: number;
  /** Invites accepted per remote server (default DEFAULT_INVITE_RATE_LIMIT). */
  inviteRateLimit?: InviteRateLimit;
}

const DEFAULT_REPAIR_INTERVAL_MS = 15_000;

/** `FEDGATE_REPLICA_INDEX` / `FEDGATE_REPLICA_COUNT`, default one replica owning every partition. */
export function replicaFromEnv(env: NodeJS.ProcessEnv = process.env): { index: number; count: number } {
  const count = Number(env.FEDGATE_REPLICA_COUNT ?? 1);
  const index = Number(env.FEDGATE_REPLICA_INDEX ?? 0);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new Error(`FEDGATE_REPLICA_INDEX=${env.FEDGATE_REPLICA_INDEX} / FEDGATE_REPLICA_COUNT=${env.FEDGATE_REPLICA_COUNT} is not a replica of a set`);
  }
  return { index, count };
}

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
  private subscriptions: BusSubscription[] = [];
  private readonly locks = new RoomLocks();
  private repairTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: StateResolverDeps) {
    const locks = this.locks;
    const api = new FederationApi(deps.federation);
    const builder = new EventBuilder(deps.store, deps.identity);
    const transactions = deps.transactions ?? clientTransactionLog(deps.store);
    this.timeline = new RoomTimeline(deps.store, deps.bus, deps.topology, transactions);
    this.reader = new RoomReader(deps.store);
    const gapFill = deps.gapFill ?? DEFAULT_GAP_FILL_LIMITS;
    const parking = { ...DEFAULT_PARKING_LIMITS, ...deps.parking };
    const budgetedApi = new FederationApi(budgetedFederation(deps.federation, parking.perCallMs));
    this.inbound = new InboundPduHandler(deps.store, this.timeline, locks, deps.keyRing, budgetedApi, deps.identity.serverName, gapFill);
    const partitionPath = new InboundPduHandler(deps.store, this.timeline, locks, deps.keyRing, new FederationApi(remoteIoRefused()), deps.identity.serverName, gapFill);
    this.parking = new RoomParking(deps.bus, deps.topology, partitionPath, this.inbound, locks, parking);
    this.localEvents = new LocalEvents(deps.store, this.timeline, locks, builder, deps.keyRing, api, transactions, deps.identity.serverName);
    const invites = new InviteChecks(deps.store, this.timeline, deps.keyRing, deps.identity.serverName, deps.inviteRateLimit);
    this.handshakes = new MembershipHandshakes(deps.store, this.timeline, locks, builder, deps.identity.serverName, deps.identity.signingKey, invites);
    this.remoteMembership = new RemoteMembership(deps.store, this.timeline, locks, deps.keyRing, api, deps.identity, this.localEvents);
    this.backfill = new RemoteBackfill(deps.store, locks, deps.keyRing, api, deps.identity.serverName);
  }

  /**
   * Finishes the commits cut short (a crash, a store or bus outage between the writes of one event): of one
   * room, or of every room this replica owns. Runs on start; callable on demand (a command that failed
   * mid-commit also leaves its room to be finished before the room's next work).
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

  private ownedPartitions(): number[] {
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    return partitionsForReplica(replica.index, replica.count, this.deps.topology.roomPartitions);
  }

  /** Finishes cut-short commits, then serves the commands and consumes the inbound partitions this replica owns. */
  async start(): Promise<void> {
    const { bus, topology } = this.deps;
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    await this.repair();
    // With one replica every command subject is served; with several, each replica serves the room partitions
    // whose inbound PDUs it consumes, so one process (and its room locks) orders all of a room's work.
    const owned = this.ownedPartitions();
    const specs = <Req, Res>(command: CommandSpec<Req, Res>): CommandSpec<Req, Res>[] =>
      replica.count === 1 ? [command] : owned.map((p) => ({ ...command, pattern: command.pattern.replace(/\*$/, String(p)) as CommandSubject<Req, Res> }));
    const serveAll = async <Req, Res>(command: CommandSpec<Req, Res>, handler: (request: Req) => Promise<Res>) => {
      for (const spec of specs(command)) this.subscriptions.push(await bus.serve(spec, handler));
    };
    await serveAll(topology.createEvent.command, (c) => this.localEvents.onCommand(c));
    await serveAll(topology.makeMembership.command, (c) => this.handshakes.makeMembership(c));
    await serveAll(topology.sendMembership.command, (c) => this.handshakes.sendMembership(c));
    await serveAll(topology.receiveInvite.command, (c) => this.handshakes.receiveInvite(c));
    await serveAll(topology.remoteMembership.command, (c) => this.remoteMembership.onCommand(c));
    await serveAll(topology.backfill.command, (c) => this.backfill.onCommand(c));
    await serveAll(topology.repair.command, (c) => this.onRepairCommand(c));
    this.parking.resume();
    // Remote I/O never runs on the ordered partition consumer: such PDUs are parked (room-parking.ts).
    for (const p of owned) {
      this.subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(p), (m) => this.parking.onPartitionMessage(m)));
      this.subscriptions.push(await bus.consume(topology.consumers.stateResolverParked(p), (m) => this.parking.onParkedMessage(m)));
    }
    // A send that failed mid-commit during an outage goes out once the outage is over, even if nothing else
    // happens in its room; until then it stays in store.pendingCommits.
    this.repairTimer = setInterval(() => void this.repairUnsettled(), this.deps.repairIntervalMs ?? DEFAULT_REPAIR_INTERVAL_MS);
    this.repairTimer.unref();
  }

  private async repairUnsettled(): Promise<void> {
    for (const roomId of this.timeline.unsettled()) {
      await this.locks.run(roomId, () => this.timeline.recover(roomId)).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.repairTimer);
    this.parking.stop();
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.stop()));
  }
}
