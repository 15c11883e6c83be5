// Federation egress: room log and outbound EDUs → per-destination bus partitions → per-destination queues
// in the store → one DestinationSender per destination. Replicas split room and destination partitions.
import { notOwned, partitionsForReplica, term, type BusSubscription, type EgressEntry, type OutboundEdu, type RoomLogEntry, type ServerUp } from '@fedgate/bus';
import { PartitionOwnership } from '@fedgate/platform';
import pLimit from 'p-limit';
import type { JsonObject } from '@fedgate/protocol';
import { QueuedWorkTraces, setOwnedPartitions } from '@fedgate/telemetry';
import { DestinationSender } from './destination-sender';
import { destinationsForEvent, queuedTraceKey } from './destinations';
import type { EgressContext } from './egress-context';
import { TurnPacer } from './turn-pacer';

const PREPARING_AT_ONCE = 16;
/**
 * How long destination steps (an item queued; a transaction prepared and its request started; an answer recorded and
 * settled) may run in one turn of the event loop, across all destinations: ~0.3–3 ms each on the gateway (a TLS
 * connection set-up is most of a send to a destination whose connection closed), so a few per turn.
 */
const DESTINATION_STEPS_MS_PER_TURN = 5;
/** And at most this many (cheap steps: 16 items queued or settles, as many as there are destination partitions). */
const DESTINATION_STEPS_PER_TURN = 16;
/** Destination items per bus publish of one event's fan-out (one commit each). */
const DESTINATIONS_PER_PUBLISH = 64;

export class FederationEgress {
  private readonly senders = new Map<string, DestinationSender>();
  private readonly subscriptions: BusSubscription[] = [];
  private readonly ownedDestinationPartitions: Set<number>;
  /** Elastic: leases on room-log and destination partitions, and what runs for each owned one. */
  private roomOwnership: PartitionOwnership | undefined;
  private destinationOwnership: PartitionOwnership | undefined;
  private readonly partitionSubscriptions = new Map<string, BusSubscription>();
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly ctx: EgressContext) {
    this.ctx = { ...ctx, traces: ctx.traces ?? new QueuedWorkTraces() };
    const { replicaIndex, replicaCount } = ctx.settings;
    this.ownedDestinationPartitions = ctx.elastic ? new Set() : new Set(partitionsForReplica(replicaIndex, replicaCount, ctx.topology.destinationPartitions));
    this.now = ctx.now ?? Date.now;
    // The store answers without a turn of the event loop, so destinations' steps would otherwise run back to back in
    // one turn (issue 19: a fan-out held ~40 in a turn, the `/version` p99 ~100 ms). Each step waits for its turn.
    const pacer = new TurnPacer({ budgetMs: ctx.settings.destinationStepsMsPerTurn ?? DESTINATION_STEPS_MS_PER_TURN, maxPerTurn: DESTINATION_STEPS_PER_TURN });
    this.ctx.pace ??= () => pacer.next();
    // Senders started together (resumed at start, a partition taken over) would otherwise each prepare before any
    // request reached the network: a bounded number prepare at once, each slot waiting for its turn first.
    const slots = pLimit(ctx.settings.preparingAtOnce ?? PREPARING_AT_ONCE);
    const pace = this.ctx.pace;
    this.ctx.preparing ??= (prepare) =>
      slots(async () => {
        await pace();
        return prepare();
      });
  }

  async start(): Promise<void> {
    const { bus, topology, settings, elastic } = this.ctx;
    const consumers = topology.consumers;
    if (elastic) {
      await this.startElastic();
    } else {
      for (const p of partitionsForReplica(settings.replicaIndex, settings.replicaCount, topology.roomPartitions)) {
        this.subscriptions.push(await bus.consume(consumers.egressRoomLog(p), (m) => this.enqueueEvent(m.data)));
      }
      for (const p of this.ownedDestinationPartitions) {
        this.subscriptions.push(await bus.consume(consumers.egressDestinations(p), (m) => this.appendToQueue(m.data)));
      }
      setOwnedPartitions('federation-egress.rooms', partitionsForReplica(settings.replicaIndex, settings.replicaCount, topology.roomPartitions));
      setOwnedPartitions('federation-egress.destinations', [...this.ownedDestinationPartitions]);
    }
    this.subscriptions.push(await bus.consume(consumers.egressOutboundEdus(), (m) => this.enqueueEdu(m.data)));
    this.subscriptions.push(await bus.consume(consumers.egressServerUp(), (m) => this.serverUp(m.data)));
    const resumed = (await this.ctx.store.egressQueue.destinationsWithWork()).filter((d) => this.owns(d));
    for (const destination of resumed) this.sender(destination).kick();
    this.ctx.logger.info({ resumed: resumed.length, destinationPartitions: [...this.ownedDestinationPartitions] }, 'federation egress started');
  }

  /**
   * Elastic: room-log partitions and destination partitions are leased separately. A destination partition
   * taken over resumes its destinations' queues from the store (an in-flight transaction is sent again under
   * its ID); one handed over stops its senders first.
   */
  private async startElastic(): Promise<void> {
    const { bus, topology, elastic } = this.ctx;
    const consumers = topology.consumers;
    const stopSubscription = async (key: string) => {
      const subscription = this.partitionSubscriptions.get(key);
      this.partitionSubscriptions.delete(key);
      await subscription?.stop();
    };
    this.roomOwnership = new PartitionOwnership({
      ...elastic!,
      scope: `${elastic!.scope}/rooms`,
      partitions: topology.roomPartitions,
      onChange: (owned) => setOwnedPartitions('federation-egress.rooms', owned),
      onAcquire: async (p) => {
        this.partitionSubscriptions.set(`room:${p}`, await bus.consume(consumers.egressRoomLog(p), (m) => (this.roomOwnership?.owns(p) ? this.enqueueEvent(m.data) : notOwned(1_000))));
      },
      onRelease: (p) => stopSubscription(`room:${p}`),
    });
    this.destinationOwnership = new PartitionOwnership({
      ...elastic!,
      scope: `${elastic!.scope}/destinations`,
      partitions: topology.destinationPartitions,
      onChange: (owned) => setOwnedPartitions('federation-egress.destinations', owned),
      onAcquire: async (p) => {
        this.ownedDestinationPartitions.add(p);
        this.partitionSubscriptions.set(
          `destination:${p}`,
          await bus.consume(consumers.egressDestinations(p), (m) => (this.destinationOwnership?.owns(p) ? this.appendToQueue(m.data) : notOwned(1_000))),
        );
        if (this.stopped) return;
        const resumed = (await this.ctx.store.egressQueue.destinationsWithWork()).filter((d) => topology.egress.partitionOf(d) === p);
        for (const destination of resumed) this.sender(destination).kick();
      },
      onRelease: async (p) => {
        this.ownedDestinationPartitions.delete(p);
        await stopSubscription(`destination:${p}`);
        const leaving = [...this.senders].filter(([destination]) => topology.egress.partitionOf(destination) === p);
        for (const [destination] of leaving) this.senders.delete(destination);
        await Promise.all(leaving.map(([, sender]) => sender.stop()));
      },
    });
    await this.roomOwnership.start();
    await this.destinationOwnership.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.roomOwnership?.stop();
    await this.destinationOwnership?.stop();
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
    await Promise.all([...this.senders.values()].map((s) => s.stop()));
    this.senders.clear();
  }

  /** Whether this replica sends to `destination` (elastic: while its lease on the destination's partition is fresh). */
  owns(destination: string): boolean {
    const p = this.ctx.topology.egress.partitionOf(destination);
    if (this.destinationOwnership) return this.destinationOwnership.owns(p);
    return this.ownedDestinationPartitions.has(p);
  }

  /** Queued items per owned destination with work (at most `limit` destinations read), for the queue depth gauges. */
  async queueDepths(limit: number): Promise<Map<string, number>> {
    const depths = new Map<string, number>();
    const owned = (await this.ctx.store.egressQueue.destinationsWithWork()).filter((d) => this.owns(d)).slice(0, limit);
    for (const destination of owned) depths.set(destination, await this.ctx.store.egressQueue.count(destination, 0));
    return depths;
  }

  /** Destinations with a sender in memory: running, or waiting to retry or poll. */
  get activeSenders(): number {
    return this.senders.size;
  }

  /** True when no sender is running (tests wait for this between steps). */
  get idle(): boolean {
    return [...this.senders.values()].every((s) => !s.busy);
  }

  private sender(destination: string): DestinationSender {
    let sender = this.senders.get(destination);
    if (!sender) {
      // Let go once idle (its queue and backoff live in the store): a thousand destinations of one fan-out do not
      // each keep a sender for as long as the process runs.
      sender = new DestinationSender(destination, { ...this.ctx, owns: (d) => this.owns(d) }, (idle) => {
        if (this.senders.get(destination) === idle) this.senders.delete(destination);
      });
      this.senders.set(destination, sender);
    }
    return sender;
  }

  /**
   * The event's destinations in a few bus publishes (issue 19: one commit each made the thousandth server wait for a
   * thousand commits before its item existed), a turn of the event loop apart: the first destinations' items are
   * handled while the rest are published (one publish of a thousand held every destination back until the last was
   * written). The room-log message is settled after the last; redelivered, all are published again and what landed
   * is deduplicated by message ID.
   */
  private async enqueueEvent(entry: RoomLogEntry): Promise<void> {
    const now = this.now();
    const items = destinationsForEvent(entry, this.ctx.serverName).map((destination) => ({
      subject: this.ctx.topology.egress.subjectFor(destination),
      data: { kind: 'pdu', destination, roomId: entry.roomId, eventId: entry.eventId, enqueuedAt: now } satisfies EgressEntry,
      options: { messageId: `${destination}:${entry.eventId}` },
    }));
    for (let i = 0; i < items.length; i += DESTINATIONS_PER_PUBLISH) {
      if (i > 0) await this.ctx.pace!();
      await this.ctx.bus.publishBatch(items.slice(i, i + DESTINATIONS_PER_PUBLISH));
    }
  }

  private async enqueueEdu(edu: OutboundEdu) {
    const destinations = edu.destinations ?? (edu.roomId !== undefined ? await this.ctx.store.rooms.getJoinedServers(edu.roomId) : undefined);
    if (!destinations) return term(`outbound EDU ${edu.eduId} (${edu.eduType}) names neither a room nor destinations`);
    const items = [...new Set(destinations)]
      .filter((destination) => destination !== this.ctx.serverName)
      .map((destination) => ({
        subject: this.ctx.topology.egress.subjectFor(destination),
        // createdAt, not now: staleness counts from when the EDU was made.
        data: { kind: 'edu', destination, eduType: edu.eduType, eduId: edu.eduId, content: edu.content, enqueuedAt: edu.createdAt } satisfies EgressEntry,
        options: { messageId: `${destination}:${edu.eduId}` },
      }));
    await this.ctx.bus.publishBatch(items);
    return undefined;
  }

  private async appendToQueue(entry: EgressEntry): Promise<void> {
    // The store and bus answer without a turn of the event loop, so without this a fan-out to a thousand servers
    // queued all thousand before any socket was touched (issue 19: first delivery after seconds), and the items of
    // all destination partitions were queued in one turn. Before queueing, not after: between the item queued and
    // its bus message settled no transaction may finish, or a crash there would queue (and send) the event again
    // once the message came back.
    await this.ctx.pace!();
    const key = entry.kind === 'pdu' ? entry.eventId : `edu:${entry.eduId}`;
    this.ctx.traces?.remember(queuedTraceKey(entry.destination, key));
    await this.ctx.store.egressQueue.append(entry.destination, key, entry as unknown as JsonObject, entry.enqueuedAt);
    if (!this.stopped) this.sender(entry.destination).kick();
  }

  private async serverUp(signal: ServerUp): Promise<void> {
    const record = await this.ctx.store.destinations.get(signal.serverName);
    if (record.retryAt === null) return;
    // Cleared in the store, so the owning replica sees it on its next look even if it is not this one.
    await this.ctx.store.destinations.wake(signal.serverName);
    this.ctx.logger.info({ destination: signal.serverName, failures: record.failures }, 'destination is up again; retrying now');
    if (this.owns(signal.serverName) && !this.stopped) this.sender(signal.serverName).kick();
  }
}
