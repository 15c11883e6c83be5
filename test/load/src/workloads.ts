// The load run's workloads: a simulated remote homeserver sends signed PDUs over federation HTTPS into rooms on a
// target, and the target's application service (its TestBridge) records when each one is pushed to it.
import type { SignedEvent } from '@fedgate/testing';
import { PeakRssWatcher, sampleProcesses } from './process-meter';
import { ResponsivenessProbe } from './responsiveness-probe';
import type { RoomSender, SimulatedHomeserver } from './simulated-homeserver';
import { percentile } from './stats';
import type { Target } from './targets';

export interface WorkloadResult {
  workload: string;
  sent: number;
  /** PDUs in /send transactions answered 200 without a per-PDU error. */
  accepted: number;
  /** PDUs pushed to the application service. */
  delivered: number;
  lost: number;
  seconds: number;
  acceptedPerSecond: number;
  deliveredPerSecond: number;
  sendMs: { p50?: number; p99?: number };
  deliveryMs: { p50?: number; p99?: number };
  cpuSecondsPer1000: number;
  /** Distributed: NATS and the MongoDB-wire server over the same time (shared by the run's targets, idle between them). */
  backingCpuSecondsPer1000?: number;
  peakRssBytes: number;
  /** federation /version answer times sampled during the workload. */
  versionMs: { p50?: number; p99?: number };
  /** The gateway's own event-loop delay during the workload (where the target reports it). */
  eventLoopDelayMs?: { p99Ms?: number; maxMs?: number };
  errors: string[];
}

/** Which of the events sent were pushed to the application service, and when. */
class DeliveryTracker {
  private readonly sentAt = new Map<string, number>();
  private readonly deliveredAt = new Map<string, number>();
  private scanned = 0;
  constructor(private readonly target: Target) {
    this.scanned = target.bridge.received.all().length;
  }
  sent(events: readonly SignedEvent[], at: number): void {
    for (const e of events) this.sentAt.set(e.eventId, at);
  }
  private scan(): void {
    const log = this.target.bridge.received.all();
    for (; this.scanned < log.length; this.scanned++) {
      const r = log[this.scanned]!;
      const id = r.event.event_id as string | undefined;
      if (r.kind === 'event' && id && this.sentAt.has(id) && !this.deliveredAt.has(id)) this.deliveredAt.set(id, r.receivedAt);
    }
  }
  delivered(ids?: readonly string[]): number {
    this.scan();
    return ids ? ids.filter((id) => this.deliveredAt.has(id)).length : this.deliveredAt.size;
  }
  latencies(): number[] {
    this.scan();
    return [...this.deliveredAt].map(([id, at]) => at - this.sentAt.get(id)!);
  }
  lastDelivery(): number {
    this.scan();
    return Math.max(0, ...this.deliveredAt.values());
  }
  get sentCount(): number {
    return this.sentAt.size;
  }
  /**
   * Waits until `ids` (default: everything sent) are delivered, or nothing new arrived for `quietMs` (long enough
   * to outlast an application-service push backoff on a loaded machine: what is still missing then counts as lost).
   */
  async settle(ids?: readonly string[], quietMs = 60_000): Promise<void> {
    const want = ids?.length ?? this.sentCount;
    let count = this.delivered(ids);
    let progressAt = Date.now();
    while (count < want && Date.now() - progressAt < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const now = this.delivered(ids);
      if (now > count) progressAt = Date.now();
      count = now;
    }
  }
}

interface Transaction {
  events: SignedEvent[];
  /** Wait until this transaction's events are delivered before sending the next (paced). */
  paced: boolean;
}

type Send = (events: SignedEvent[]) => Promise<void>;

/** Runs `drive` (which sends through `send`) and measures acceptance, delivery, CPU, RSS and responsiveness. */
async function measure(workload: string, sim: SimulatedHomeserver, target: Target, drive: (send: Send, tracker: DeliveryTracker) => Promise<void>): Promise<WorkloadResult> {
  const tracker = new DeliveryTracker(target);
  const errors: string[] = [];
  const sendTimes: number[] = [];
  let accepted = 0;
  const cpuBefore = sampleProcesses(target.pids()).cpuSeconds;
  const backingBefore = target.backingPids ? sampleProcesses(target.backingPids()).cpuSeconds : 0;
  const rss = new PeakRssWatcher(() => target.pids());
  await target.eventLoopDelay?.().catch(() => undefined);
  const probe = new ResponsivenessProbe(sim, target);
  const started = Date.now();
  const send: Send = async (events) => {
    const at = Date.now();
    tracker.sent(events, at);
    const answer = await sim.send(target.serverName, events).catch((err: Error) => ({ status: 0, errors: [err.message] }));
    sendTimes.push(Date.now() - at);
    if (answer.status === 200) accepted += events.length - answer.errors.length;
    else errors.push(`/send answered ${answer.status}`);
    errors.push(...answer.errors);
  };
  await drive(send, tracker);
  const sentDone = Date.now();
  await tracker.settle();
  const delivered = tracker.delivered();
  const finished = Math.max(tracker.lastDelivery(), sentDone);
  const cpu = sampleProcesses(target.pids()).cpuSeconds - cpuBefore;
  const backingCpu = target.backingPids ? sampleProcesses(target.backingPids()).cpuSeconds - backingBefore : undefined;
  const peakRssBytes = rss.stop();
  const versionMs = await probe.stop();
  const eventLoopDelayMs = await target.eventLoopDelay?.().catch(() => undefined);
  const latencies = tracker.latencies();
  const seconds = (finished - started) / 1000;
  return {
    workload,
    sent: tracker.sentCount,
    accepted,
    delivered,
    lost: tracker.sentCount - delivered,
    seconds,
    acceptedPerSecond: accepted / ((sentDone - started) / 1000),
    deliveredPerSecond: delivered / seconds,
    sendMs: { p50: percentile(sendTimes, 50), p99: percentile(sendTimes, 99) },
    deliveryMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    cpuSecondsPer1000: delivered > 0 ? (cpu / delivered) * 1000 : Number.NaN,
    ...(backingCpu !== undefined ? { backingCpuSecondsPer1000: delivered > 0 ? (backingCpu / delivered) * 1000 : Number.NaN } : {}),
    peakRssBytes,
    versionMs,
    ...(eventLoopDelayMs ? { eventLoopDelayMs } : {}),
    errors: [...new Set(errors)].slice(0, 10),
  };
}

interface Transaction {
  events: SignedEvent[];
  /** Wait until this transaction's events are delivered before sending the next (paced). */
  paced: boolean;
}

/** Sends transactions one at a time (the next once the previous /send is answered, or delivered when paced). */
function run(workload: string, sim: SimulatedHomeserver, target: Target, transactions: Transaction[]): Promise<WorkloadResult> {
  return measure(workload, sim, target, async (send, tracker) => {
    for (const txn of transactions) {
      await send(txn.events);
      if (txn.paced) await tracker.settle(txn.events.map((e) => e.eventId));
    }
  });
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function joinRooms(sim: SimulatedHomeserver, target: Target, count: number): Promise<RoomSender[]> {
  const senders: RoomSender[] = [];
  for (let i = 0; i < count; i++) senders.push(await sim.join(target.serverName, await target.createRoom()));
  return senders;
}

export interface Scale {
  /** One busy room, paced: transactions of 50, the next once the previous reached the application service. */
  pacedTransactions: number;
  interleavedRooms: number;
  perRoom: number;
  backToBack: number;
  perTransaction: number;
  /** Seconds of sending at a fixed rate (half the best delivered rate measured before) for the latency figure. */
  fixedRateSeconds: number;
  /** Members of the simulator's room that the target joins. */
  bigRoomMembers: number;
  /** Simulated servers joined to one room for the outbound fan-out. */
  fanOutServers: number;
  /** Joins in flight while the fan-out's servers join the room. */
  joinConcurrency: number;
  /** How the fan-out's room gets its servers (see `RoomBuild` in fan-out.ts); relayed joins unless set. */
  fanOutBuild?: 'joins' | 'relay';
  /** How long to wait, after the fan-out's messages, for the target to close its idle connections (RSS then); 0 or unset: not waited for. */
  fanOutIdleCloseWaitMs?: number;
  /** Worker threads the fan-out's simulated servers answer from (relayed build; 0: the generator's main thread). */
  fanOutThreads?: number;
  /** Where the fedgate processes (started with --heapsnapshot-signal) write a heap snapshot with the fan-out's servers joined. */
  heapSnapshotDir?: string;
}

export const scales: Record<'short' | 'medium' | 'full', Scale> = {
  short: { pacedTransactions: 2, interleavedRooms: 3, perRoom: 10, backToBack: 100, perTransaction: 50, fanOutServers: 3, joinConcurrency: 8, fixedRateSeconds: 3, bigRoomMembers: 50 },
  medium: { pacedTransactions: 6, interleavedRooms: 10, perRoom: 50, backToBack: 1_000, perTransaction: 50, fanOutServers: 20, joinConcurrency: 8, fixedRateSeconds: 10, bigRoomMembers: 1_000 },
  full: { pacedTransactions: 20, interleavedRooms: 20, perRoom: 100, backToBack: 5_000, perTransaction: 50, fanOutServers: 100, joinConcurrency: 8, fixedRateSeconds: 30, bigRoomMembers: 10_000, fanOutIdleCloseWaitMs: 120_000 },
};

export async function onePacedRoom(sim: SimulatedHomeserver, target: Target, scale: Scale): Promise<WorkloadResult> {
  const [room] = await joinRooms(sim, target, 1);
  const transactions = Array.from({ length: scale.pacedTransactions }, (_, t) => ({
    events: Array.from({ length: scale.perTransaction }, (_, i) => room!.nextMessage(`paced ${t}.${i}`)),
    paced: true,
  }));
  return run('one room, paced', sim, target, transactions);
}

export async function interleavedRooms(sim: SimulatedHomeserver, target: Target, scale: Scale): Promise<WorkloadResult> {
  const rooms = await joinRooms(sim, target, scale.interleavedRooms);
  const events: SignedEvent[] = [];
  for (let i = 0; i < scale.perRoom; i++) for (const room of rooms) events.push(room.nextMessage(`interleaved ${i}`));
  return run(`${scale.interleavedRooms} rooms × ${scale.perRoom} interleaved`, sim, target, chunk(events, scale.perTransaction).map((e) => ({ events: e, paced: false })));
}

export async function backToBack(sim: SimulatedHomeserver, target: Target, scale: Scale): Promise<WorkloadResult> {
  const [room] = await joinRooms(sim, target, 1);
  const events = Array.from({ length: scale.backToBack }, (_, i) => room!.nextMessage(`burst ${i}`));
  return run(`${scale.backToBack} PDUs back to back, one room`, sim, target, chunk(events, scale.perTransaction).map((e) => ({ events: e, paced: false })));
}

export const workloads = [onePacedRoom, interleavedRooms, backToBack];

/**
 * Open loop at `ratePerSecond`: a transaction of 10 PDUs every 10/rate seconds whether or not the previous one
 * was answered, for the latency from sending to the push to the application service under a steady load.
 */
export async function fixedRate(sim: SimulatedHomeserver, target: Target, scale: Scale, ratePerSecond: number): Promise<WorkloadResult> {
  const [room] = await joinRooms(sim, target, 1);
  const perTransaction = 10;
  const count = Math.max(1, Math.round((ratePerSecond * scale.fixedRateSeconds) / perTransaction));
  const transactions = Array.from({ length: count }, (_, t) => Array.from({ length: perTransaction }, (_, i) => room!.nextMessage(`steady ${t}.${i}`)));
  const intervalMs = (perTransaction / ratePerSecond) * 1000;
  // One transaction in flight, as a homeserver sends to one destination (concurrent transactions from one origin
  // may be handled out of order; the simulator now fills such gaps through /get_missing_events, at a cost that
  // is not what this workload measures).
  return measure(`steady load at half the best delivered rate`, sim, target, async (send) => {
    const started = Date.now();
    for (const [t, events] of transactions.entries()) {
      const due = started + t * intervalMs;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      await send(events);
    }
  });
}
