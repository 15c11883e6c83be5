// The state-resolver's parts wired together, and their subscriptions on the bus.
import { nak, partitionsForReplica, type Bus, type BusSubscription, type BusTopology, type CommandSpec, type CommandSubject } from '@fedgate/bus';
import { FederationApi, type FederationHttpClient, type KeyRing } from '@fedgate/federation-client';
import { PartitionOwnership, type ElasticOwnership } from '@fedgate/platform';
import type { Store } from '@fedgate/store';
import { clientTransactionLog, type ClientTransactionLog } from './client-transactions';
import { EventBuilder, type ServerSigner } from './event-builder';
import { DEFAULT_GAP_FILL_LIMITS, InboundPduHandler, type GapFillLimits } from './inbound-pdus';
import { LocalEvents } from './local-events';
import { MembershipHandshakes } from './membership-handshakes';
import { RemoteBackfill } from './remote-backfill';
import { RemoteMembership } from './remote-membership';
import { RoomLocks } from './room-locks';
import { RoomReader } from './room-reader';
import { RoomTimeline } from './room-timeline';

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
  gapFill?: GapFillLimits;
  transactions?: ClientTransactionLog;
}

/** A command served for one partition only: its subject's trailing `*` replaced by the partition. */
function forPartition<Req, Res>(command: CommandSpec<Req, Res>, p: number): CommandSpec<Req, Res> {
  return { ...command, pattern: command.pattern.replace(/\*$/, String(p)) as CommandSubject<Req, Res> };
}

export class StateResolver {
  readonly timeline: RoomTimeline;
  readonly reader: RoomReader;
  readonly inbound: InboundPduHandler;
  readonly localEvents: LocalEvents;
  readonly handshakes: MembershipHandshakes;
  readonly remoteMembership: RemoteMembership;
  readonly backfill: RemoteBackfill;
  private subscriptions: BusSubscription[] = [];
  private ownership: PartitionOwnership | undefined;
  private readonly partitionSubscriptions = new Map<number, BusSubscription[]>();

  constructor(private readonly deps: StateResolverDeps) {
    const locks = new RoomLocks();
    const api = new FederationApi(deps.federation);
    const builder = new EventBuilder(deps.store, deps.identity);
    this.timeline = new RoomTimeline(deps.store, deps.bus, deps.topology);
    this.reader = new RoomReader(deps.store);
    this.inbound = new InboundPduHandler(deps.store, this.timeline, locks, deps.keyRing, api, deps.identity.serverName, deps.gapFill ?? DEFAULT_GAP_FILL_LIMITS);
    const transactions = deps.transactions ?? clientTransactionLog(deps.store);
    this.localEvents = new LocalEvents(deps.store, this.timeline, locks, builder, deps.keyRing, api, transactions, deps.identity.serverName);
    this.handshakes = new MembershipHandshakes(deps.store, this.timeline, locks, builder, deps.identity.serverName, deps.identity.signingKey);
    this.remoteMembership = new RemoteMembership(deps.store, this.timeline, locks, deps.keyRing, api, deps.identity, this.localEvents);
    this.backfill = new RemoteBackfill(deps.store, locks, deps.keyRing, api, deps.identity.serverName);
  }

  /** Serves the commands and consumes the inbound partitions this replica owns (a static share, or leased ones when elastic). */
  async start(): Promise<void> {
    const { bus, topology, elastic } = this.deps;
    if (elastic) {
      this.ownership = new PartitionOwnership({
        ...elastic,
        partitions: topology.roomPartitions,
        onAcquire: (p) => this.startPartition(p),
        onRelease: (p) => this.stopPartition(p),
      });
      await this.ownership.start();
      return;
    }
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    // With one replica every command subject is served; with several, each replica serves the room partitions
    // whose inbound PDUs it consumes, so one process (and its room locks) orders all of a room's work.
    const owned = partitionsForReplica(replica.index, replica.count, topology.roomPartitions);
    for (const { command, handler } of this.commands()) {
      const specs = replica.count === 1 ? [command] : owned.map((p) => forPartition(command, p));
      for (const spec of specs) this.subscriptions.push(await bus.serve(spec, handler));
    }
    for (const p of owned) {
      this.subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(p), (m) => this.inbound.onMessage(m)));
    }
  }

  /** The partitions this replica works on now (all of a static share; the leased ones when elastic). */
  ownedPartitions(): number[] {
    if (this.ownership) return this.ownership.owned();
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    return partitionsForReplica(replica.index, replica.count, this.deps.topology.roomPartitions);
  }

  private commands(): Array<{ command: CommandSpec<never, unknown>; handler: (request: never) => Promise<unknown> }> {
    const { topology } = this.deps;
    const entry = <Req, Res>(command: CommandSpec<Req, Res>, handler: (request: Req) => Promise<Res>) =>
      ({ command, handler }) as unknown as { command: CommandSpec<never, unknown>; handler: (request: never) => Promise<unknown> };
    return [
      entry(topology.createEvent.command, (c) => this.localEvents.onCommand(c)),
      entry(topology.makeMembership.command, (c) => this.handshakes.makeMembership(c)),
      entry(topology.sendMembership.command, (c) => this.handshakes.sendMembership(c)),
      entry(topology.receiveInvite.command, (c) => this.handshakes.receiveInvite(c)),
      entry(topology.remoteMembership.command, (c) => this.remoteMembership.onCommand(c)),
      entry(topology.backfill.command, (c) => this.backfill.onCommand(c)),
    ];
  }

  /**
   * Elastic: the partition's commands and inbound consumer, each fenced — a replica that stalled past its
   * lease (and may have lost the partition) neither answers a command nor handles a PDU of it.
   */
  private async startPartition(p: number): Promise<void> {
    const { bus, topology } = this.deps;
    const owns = () => this.ownership?.owns(p) === true;
    const subscriptions: BusSubscription[] = [];
    this.partitionSubscriptions.set(p, subscriptions);
    for (const { command, handler } of this.commands()) {
      subscriptions.push(
        await bus.serve(forPartition(command, p), async (request: never) => {
          if (!owns()) throw new Error(`room partition ${p} is moving to another replica; retry`);
          return handler(request);
        }),
      );
    }
    subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(p), (m) => (owns() ? this.inbound.onMessage(m) : nak(1_000))));
  }

  private async stopPartition(p: number): Promise<void> {
    const subscriptions = this.partitionSubscriptions.get(p) ?? [];
    this.partitionSubscriptions.delete(p);
    await Promise.all(subscriptions.map((s) => s.stop()));
  }

  async stop(): Promise<void> {
    await this.ownership?.stop();
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.stop()));
  }
}
