// The state-resolver's parts wired together, and their subscriptions on the bus.
import { partitionsForReplica, type Bus, type BusSubscription, type BusTopology, type CommandSpec, type CommandSubject } from '@fedgate/bus';
import { FederationApi, type FederationHttpClient, type KeyRing } from '@fedgate/federation-client';
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
  gapFill?: GapFillLimits;
  transactions?: ClientTransactionLog;
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

  /** Serves the commands and consumes the inbound partitions this replica owns. */
  async start(): Promise<void> {
    const { bus, topology } = this.deps;
    const replica = this.deps.replica ?? { index: 0, count: 1 };
    // With one replica every command subject is served; with several, each replica serves the room partitions
    // whose inbound PDUs it consumes, so one process (and its room locks) orders all of a room's work.
    const owned = partitionsForReplica(replica.index, replica.count, topology.roomPartitions);
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
    for (const p of owned) {
      this.subscriptions.push(await bus.consume(topology.consumers.stateResolverInbound(p), (m) => this.inbound.onMessage(m)));
    }
  }

  async stop(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.stop()));
  }
}
