// Federation egress: room log and outbound EDUs → per-destination bus partitions → per-destination queues
// in the store → one DestinationSender per destination. Replicas split room and destination partitions.
import { partitionsForReplica, term, type BusSubscription, type EgressEntry, type OutboundEdu, type RoomLogEntry, type ServerUp } from '@fedgate/bus';
import type { JsonObject } from '@fedgate/protocol';
import { DestinationSender } from './destination-sender';
import { destinationsForEvent } from './destinations';
import type { EgressContext } from './egress-context';

export class FederationEgress {
  private readonly senders = new Map<string, DestinationSender>();
  private readonly subscriptions: BusSubscription[] = [];
  private readonly ownedDestinationPartitions: Set<number>;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly ctx: EgressContext) {
    const { replicaIndex, replicaCount } = ctx.settings;
    this.ownedDestinationPartitions = new Set(partitionsForReplica(replicaIndex, replicaCount, ctx.topology.destinationPartitions));
    this.now = ctx.now ?? Date.now;
  }

  async start(): Promise<void> {
    const { bus, topology, settings } = this.ctx;
    const consumers = topology.consumers;
    for (const p of partitionsForReplica(settings.replicaIndex, settings.replicaCount, topology.roomPartitions)) {
      this.subscriptions.push(await bus.consume(consumers.egressRoomLog(p), (m) => this.enqueueEvent(m.data)));
    }
    for (const p of this.ownedDestinationPartitions) {
      this.subscriptions.push(await bus.consume(consumers.egressDestinations(p), (m) => this.appendToQueue(m.data)));
    }
    this.subscriptions.push(await bus.consume(consumers.egressOutboundEdus(), (m) => this.enqueueEdu(m.data)));
    this.subscriptions.push(await bus.consume(consumers.egressServerUp(), (m) => this.serverUp(m.data)));
    const resumed = (await this.ctx.store.egressQueue.destinationsWithWork()).filter((d) => this.owns(d));
    for (const destination of resumed) this.sender(destination).kick();
    this.ctx.logger.info({ resumed: resumed.length, destinationPartitions: [...this.ownedDestinationPartitions] }, 'federation egress started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
    await Promise.all([...this.senders.values()].map((s) => s.stop()));
    this.senders.clear();
  }

  /** Whether this replica sends to `destination`. */
  owns(destination: string): boolean {
    return this.ownedDestinationPartitions.has(this.ctx.topology.egress.partitionOf(destination));
  }

  /** True when no sender is running (tests wait for this between steps). */
  get idle(): boolean {
    return [...this.senders.values()].every((s) => !s.busy);
  }

  private sender(destination: string): DestinationSender {
    let sender = this.senders.get(destination);
    if (!sender) {
      sender = new DestinationSender(destination, this.ctx);
      this.senders.set(destination, sender);
    }
    return sender;
  }

  private async enqueueEvent(entry: RoomLogEntry): Promise<void> {
    const now = this.now();
    for (const destination of destinationsForEvent(entry, this.ctx.serverName)) {
      const item: EgressEntry = { kind: 'pdu', destination, roomId: entry.roomId, eventId: entry.eventId, enqueuedAt: now };
      await this.ctx.bus.publish(this.ctx.topology.egress.subjectFor(destination), item, { messageId: `${destination}:${entry.eventId}` });
    }
  }

  private async enqueueEdu(edu: OutboundEdu) {
    const destinations = edu.destinations ?? (edu.roomId !== undefined ? await this.ctx.store.rooms.getJoinedServers(edu.roomId) : undefined);
    if (!destinations) return term(`outbound EDU ${edu.eduId} (${edu.eduType}) names neither a room nor destinations`);
    for (const destination of new Set(destinations)) {
      if (destination === this.ctx.serverName) continue;
      // createdAt, not now: staleness counts from when the EDU was made.
      const item: EgressEntry = { kind: 'edu', destination, eduType: edu.eduType, eduId: edu.eduId, content: edu.content, enqueuedAt: edu.createdAt };
      await this.ctx.bus.publish(this.ctx.topology.egress.subjectFor(destination), item, { messageId: `${destination}:${edu.eduId}` });
    }
    return undefined;
  }

  private async appendToQueue(entry: EgressEntry): Promise<void> {
    const key = entry.kind === 'pdu' ? entry.eventId : `edu:${entry.eduId}`;
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
