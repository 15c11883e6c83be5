// The one place that names every stream, subject, durable consumer and command of the bus.
// Per-room work is partitioned by a hash of the room ID, per-destination work by a hash of the
// server name: order holds within a partition, and partitions spread over replicas.
// Changing a partition count remaps keys: drain the streams first.
import type {
  AppServicePush,
  CreateEventCommand,
  CreateEventReply,
  DeadLetter,
  EgressEntry,
  InboundEdu,
  InboundPdu,
  MakeMembershipCommand,
  MakeMembershipReply,
  OutboundEdu,
  ParkedPdu,
  ReceiveInviteCommand,
  ReceiveInviteReply,
  RepairCommand,
  RepairReply,
  BackfillCommand,
  BackfillReply,
  RemoteMembershipCommand,
  RemoteMembershipReply,
  RoomLogEntry,
  SendMembershipCommand,
  SendMembershipReply,
  ServerUp,
} from './messages';
import { partitionOf } from './partition';

declare const carries: unique symbol;
/** A subject (or subject pattern) that carries messages of type T. */
export type Subject<T> = string & { readonly [carries]?: T };
/** A command subject: requests of type Req answered with Res. */
export type CommandSubject<Req, Res> = string & { readonly [carries]?: [Req, Res] };

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** JetStream's server-side dedupe window for message IDs. */
  duplicateWindowMs: number;
  /**
   * Drop a message once every consumer settled it (and, embedded, the dedupe window passed). Nothing is
   * dropped by age: a message no consumer has settled stays, and dead letters stay until an operator removes them.
   */
  pruneWhenConsumed: boolean;
}

export interface ConsumerSpec<T = unknown> {
  stream: string;
  durable: string;
  filterSubject: Subject<T>;
  /** Handler attempts; one more delivery (after a crash or ack timeout) goes straight to dead letters. */
  maxDeliver: number;
  ackWaitMs: number;
  /** 1 keeps strict order within the filter; more allows in-flight messages for throughput. */
  maxAckPending: number;
  /** Handlers running at once (default 1, at most maxAckPending): for work that waits on others, not for order. */
  concurrency?: number;
  /**
   * Settle each message before the next one is handled, instead of a run of them in one commit (embedded bus):
   * for handlers whose effect may not be repeated once a later message's effect went out (a crash redelivers what
   * of a run was not settled yet).
   */
  settleEach?: boolean;
}

export interface CommandSpec<Req, Res> {
  /** Subject pattern served (wildcards allowed); requests go to concrete subjects within it. */
  pattern: CommandSubject<Req, Res>;
  queueGroup: string;
  timeoutMs: number;
}

export interface TopologyConfig {
  /** Subject and stream prefix; tests use a unique one to share a server. */
  prefix?: string;
  roomPartitions?: number;
  destinationPartitions?: number;
  maxDeliver?: number;
  ackWaitMs?: number;
  /**
   * Ack wait of the consumers whose every delivered message is in a handler (the ordered ones, one message in
   * flight that holds its partition up, and the parked ones, as many handlers as messages in flight): short, so
   * a message taken by a process that died goes to the partition's next owner about when its lease has moved,
   * rather than after `ackWaitMs`; a handler at work renews it (heartbeats). Default min(ackWaitMs, 5 s).
   * Consumers that buffer messages for fewer handlers keep `ackWaitMs`.
   */
  handledAckWaitMs?: number;
  duplicateWindowMs?: number;
  /** Parked PDUs in flight per room partition (default 256; most wait for their room's turn). */
  parkedConcurrency?: number;
  /** Overrides of the commands' declared timeouts (tests use small ones). */
  commandTimeoutsMs?: Partial<Record<CommandName, number>>;
}

export type CommandName = 'createEvent' | 'makeMembership' | 'sendMembership' | 'receiveInvite' | 'remoteMembership' | 'backfill' | 'repair';

/** A subject token from arbitrary text (room IDs, server names, EDU types contain `.`, `:`, `*`...). */
export function subjectToken(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.charCodeAt(0).toString(16)}`);
}

export function busTopology(config: TopologyConfig = {}) {
  const prefix = config.prefix ?? 'fedgate';
  const streamPrefix = prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const roomPartitions = config.roomPartitions ?? 16;
  const destinationPartitions = config.destinationPartitions ?? 16;
  const maxDeliver = config.maxDeliver ?? 10;
  const ackWaitMs = config.ackWaitMs ?? 30_000;
  const handledAckWaitMs = config.handledAckWaitMs ?? Math.min(ackWaitMs, 5_000);
  const duplicateWindowMs = config.duplicateWindowMs ?? 2 * 60_000;
  const parkedConcurrency = config.parkedConcurrency ?? 256;

  const stream = (suffix: string, subjects: string[], pruneWhenConsumed = true): StreamSpec => ({
    name: `${streamPrefix}_${suffix}`,
    subjects,
    duplicateWindowMs,
    pruneWhenConsumed,
  });
  const streams = {
    inbound: stream('INBOUND', [`${prefix}.inbound.>`]),
    roomLog: stream('ROOM_LOG', [`${prefix}.room.log.>`]),
    egress: stream('EGRESS', [`${prefix}.egress.>`, `${prefix}.outbound.>`]),
    appservice: stream('APPSERVICE', [`${prefix}.appservice.>`]),
    deadLetters: stream('DEAD_LETTERS', [`${prefix}.dead.>`], false),
  };

  const partitioned = <T>(base: string, count: number) => ({
    partitions: count,
    partitionOf: (key: string) => partitionOf(key, count),
    /** Subject for a key (room ID or server name). */
    subjectFor: (key: string): Subject<T> => `${base}.${partitionOf(key, count)}`,
    partition: (p: number): Subject<T> => `${base}.${p}`,
    all: `${base}.*` as Subject<T>,
  });

  const inboundPdu = partitioned<InboundPdu>(`${prefix}.inbound.pdu`, roomPartitions);
  /** Inbound PDUs waiting on a remote server (gap filling), off their partition's ordered path; message ID `parked:<event ID>`. */
  const parkedPdu = partitioned<ParkedPdu>(`${prefix}.inbound.parked`, roomPartitions);
  const roomLog = partitioned<RoomLogEntry>(`${prefix}.room.log`, roomPartitions);
  const egress = partitioned<EgressEntry>(`${prefix}.egress.dest`, destinationPartitions);
  const inboundEdu = {
    subjectFor: (eduType: string): Subject<InboundEdu> => `${prefix}.inbound.edu.${subjectToken(eduType)}`,
    all: `${prefix}.inbound.edu.*` as Subject<InboundEdu>,
  };
  const appservice = {
    subjectFor: (appserviceId: string): Subject<AppServicePush> => `${prefix}.appservice.${subjectToken(appserviceId)}`,
  };
  const deadLetters = {
    subjectFor: (consumer: string): Subject<DeadLetter> => `${prefix}.dead.${subjectToken(consumer)}`,
    all: `${prefix}.dead.>` as Subject<DeadLetter>,
  };
  /** A state-resolver command addressed to the room's partition, so it runs in that room's order. */
  const roomCommand = <Req, Res>(name: string, declaredMs: number, key: CommandName) => {
    const base = `${prefix}.cmd.${name}`;
    const timeoutMs = config.commandTimeoutsMs?.[key] ?? declaredMs;
    return {
      subjectFor: (roomId: string): CommandSubject<Req, Res> => `${base}.${partitionOf(roomId, roomPartitions)}`,
      partition: (p: number): CommandSubject<Req, Res> => `${base}.${p}`,
      command: {
        pattern: `${base}.*` as CommandSubject<Req, Res>,
        queueGroup: `${prefix}-state-resolver`,
        timeoutMs,
      } satisfies CommandSpec<Req, Res>,
    };
  };
  const createEvent = roomCommand<CreateEventCommand, CreateEventReply>('create-event', 10_000, 'createEvent');
  const makeMembership = roomCommand<MakeMembershipCommand, MakeMembershipReply>('make-membership', 10_000, 'makeMembership');
  const sendMembership = roomCommand<SendMembershipCommand, SendMembershipReply>('send-membership', 30_000, 'sendMembership');
  const receiveInvite = roomCommand<ReceiveInviteCommand, ReceiveInviteReply>('receive-invite', 10_000, 'receiveInvite');
  /** Involves make_* and send_* round trips to remote servers, so it may take long. */
  const remoteMembership = roomCommand<RemoteMembershipCommand, RemoteMembershipReply>('remote-membership', 120_000, 'remoteMembership');
  /** Asks remote servers for a room's history (`/backfill`), one after another until one answers. */
  const backfill = roomCommand<BackfillCommand, BackfillReply>('backfill', 60_000, 'backfill');
  /** Operator: finish the commits cut short in one room, or in every room of a partition (`fedgate rooms repair`). */
  const repair = roomCommand<RepairCommand, RepairReply>('repair', 60_000, 'repair');
  const outboundEdu = {
    subject: `${prefix}.outbound.edu` as Subject<OutboundEdu>,
  };
  /** Ingress → egress: a request from this server authenticated, so it is up (wake a backed-off destination). */
  const serverUp = {
    subject: `${prefix}.egress.server-up` as Subject<ServerUp>,
  };

  const consumer = <T>(s: StreamSpec, durable: string, filterSubject: Subject<T>, maxAckPending: number, concurrency?: number, settleEach?: boolean): ConsumerSpec<T> => ({
    stream: s.name,
    durable: `${prefix}-${durable}`,
    filterSubject,
    maxDeliver,
    ackWaitMs: (concurrency ?? 1) >= maxAckPending ? handledAckWaitMs : ackWaitMs,
    maxAckPending,
    ...(concurrency ? { concurrency } : {}),
    ...(settleEach ? { settleEach } : {}),
  });
  const consumers = {
    /** state-resolver: one ordered consumer per room partition. */
    stateResolverInbound: (p: number) => consumer(streams.inbound, `state-resolver-pdu-${p}`, inboundPdu.partition(p), 1),
    /** state-resolver: parked PDUs of a room partition, many rooms at once (each room's in order, by state-resolver). */
    stateResolverParked: (p: number) => consumer(streams.inbound, `state-resolver-parked-${p}`, parkedPdu.partition(p), parkedConcurrency, parkedConcurrency),
    /** chat-sync: EDUs (typing, receipts, presence, to-device) for the chat platform; order not needed. */
    chatSyncEdus: () => consumer(streams.inbound, 'chat-sync-edu', inboundEdu.all, 256),
    /** chat-sync: room event log per partition, to fan out to application services. */
    chatSyncRoomLog: (p: number) => consumer(streams.roomLog, `chat-sync-room-log-${p}`, roomLog.partition(p), 1),
    /** federation-egress: room event log per partition, to compute destinations. */
    egressRoomLog: (p: number) => consumer(streams.roomLog, `egress-room-log-${p}`, roomLog.partition(p), 1),
    /**
     * federation-egress: destination queues per destination partition. Each item settled before the next: once queued
     * it may be sent at once, and a redelivery after that would queue and send it again.
     */
    egressDestinations: (p: number) => consumer(streams.egress, `egress-dest-${p}`, egress.partition(p), 1, undefined, true),
    /** federation-egress: local EDUs to fan out to destination queues; order not needed. */
    egressOutboundEdus: () => consumer(streams.egress, 'egress-outbound-edu', outboundEdu.subject, 256),
    /** federation-egress: server-up signals from ingress; order not needed. */
    egressServerUp: () => consumer(streams.egress, 'egress-server-up', serverUp.subject, 256),
    /** chat-sync: one push queue per application service. */
    appservicePush: (appserviceId: string) =>
      consumer(streams.appservice, `appservice-${subjectToken(appserviceId)}`, appservice.subjectFor(appserviceId), 1),
  };

  return {
    prefix,
    roomPartitions,
    destinationPartitions,
    streams,
    allStreams: Object.values(streams),
    inboundPdu,
    parkedPdu,
    inboundEdu,
    roomLog,
    egress,
    appservice,
    deadLetters,
    outboundEdu,
    serverUp,
    createEvent,
    makeMembership,
    sendMembership,
    receiveInvite,
    remoteMembership,
    backfill,
    repair,
    /** Every command, so a request waits its own command's declared timeout. */
    allCommands: [createEvent, makeMembership, sendMembership, receiveInvite, remoteMembership, backfill, repair].map(
      (c) => c.command as CommandSpec<unknown, unknown>,
    ),
    consumers,
  };
}

export type BusTopology = ReturnType<typeof busTopology>;

/** Partitions a replica owns when `replicaCount` replicas split `partitionCount` partitions. */
export function partitionsForReplica(replicaIndex: number, replicaCount: number, partitionCount: number): number[] {
  const owned: number[] = [];
  for (let p = 0; p < partitionCount; p++) if (p % replicaCount === replicaIndex) owned.push(p);
  return owned;
}
