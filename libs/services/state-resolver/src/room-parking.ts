// Keeps remote I/O off a room partition's ordered consumer. An inbound PDU whose handling would wait on a
// remote server (gap filling: get_missing_events, /state_ids, /event) is parked: republished to the
// partition's parked subject and acked, so the partition goes on with other rooms. Parked PDUs are
// handled concurrently across rooms, one at a time per room, each within a time budget; one that cannot
// be handled in its budget is given up to dead letters with the reason. While a room has parked PDUs,
// its later PDUs are parked behind them, so a room's events keep their order; a PDU whose room is held
// by a command (which may be waiting on a remote server under the room lock) is parked too.
import { LRUCache } from 'lru-cache';
import { ack, nak, term, type Bus, type BusTopology, type HandlerOutcome, type ParkedPdu, type InboundPdu, type ReceivedMessage } from '@fedgate/bus';
import { FederationClientError } from '@fedgate/federation-client';
import { describeError, PoisonMessageError } from './errors';
import { isTransient, type InboundPduHandler } from './inbound-pdus';
import { RemoteIoNeeded, withRemoteBudget } from './remote-budget';
import { RoomLocks } from './room-locks';

export interface ParkingLimits {
  /** Time a parked PDU may spend on remote servers (all its gap filling and retries) before it is given up. */
  budgetMs: number;
  /** Longest one remote call may take within the budget. */
  perCallMs: number;
  /** First pause before retrying after a transient remote failure; doubles each time. */
  retryDelayMs: number;
  /** Longest pause between retries. */
  maxRetryDelayMs: number;
}

export const DEFAULT_PARKING_LIMITS: ParkingLimits = { budgetMs: 5 * 60_000, perCallMs: 60_000, retryDelayMs: 1_000, maxRetryDelayMs: 30_000 };

const MAX_SILENT_ORIGINS = 10_000;

interface Silence {
  /** When gap filling from the origin for `eventId` was given up. */
  at: number;
  eventId: string;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class RoomParking {
  /** Rooms with parked PDUs not yet settled in this process, and how many. */
  private readonly parked = new Map<string, number>();
  /** Events parked by this process whose parked copy has not been picked up yet (they already hold their room). */
  private readonly parkedHere = new Set<string>();
  /** One parked PDU per room at a time; the budget starts when its turn comes. */
  private readonly turns = new RoomLocks();
  /**
   * (room, origin) whose gap filling was given up: PDUs parked before that and needing it are given up at once.
   * Read with peek, so the least recently used is the oldest give-up (the first to expire) and goes first when full:
   * a forgotten origin only costs one more budget.
   */
  private readonly silentOrigins = new LRUCache<string, Silence>({ max: MAX_SILENT_ORIGINS });
  /** Aborted by stop(): parked work hands its message back to the bus and its remote calls end. */
  private stopping = new AbortController();

  constructor(
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    /** Handles PDUs whose remote calls throw RemoteIoNeeded (the partition path). */
    private readonly local: InboundPduHandler,
    /** Handles PDUs with remote calls bounded by the budget (the parked path). */
    private readonly remote: InboundPduHandler,
    /** The room locks the handlers and commands share. */
    private readonly roomLocks: RoomLocks,
    private readonly limits: ParkingLimits = DEFAULT_PARKING_LIMITS,
  ) {}

  /** Before the consumers stop: waiting parked PDUs go back to the bus (redelivered on the next start) instead of holding shutdown. */
  stop(): void {
    this.stopping.abort();
  }

  /** After stop(), before the consumers start again. */
  resume(): void {
    if (this.stopping.signal.aborted) this.stopping = new AbortController();
  }

  /** Rooms that have parked PDUs in this process (for tests and diagnostics). */
  parkedRooms(): string[] {
    return [...this.parked.keys()];
  }

  /** The room partition's ordered consumer: handles what needs no remote server, parks the rest. */
  async onPartitionMessage(message: ReceivedMessage<InboundPdu>): Promise<HandlerOutcome> {
    const { roomId } = message.data;
    if (this.parked.has(roomId)) return this.park(message.data, 'an earlier event of its room is parked');
    // A command may hold the room across remote calls (remote join 120 s, backfill, invite): do not wait on it here.
    if (this.roomLocks.isHeld(roomId)) return this.park(message.data, 'its room is busy with a command');
    try {
      return await this.local.onMessage(message);
    } catch (err) {
      if (err instanceof RemoteIoNeeded) return this.park(message.data, err.message);
      throw err;
    }
  }

  private async park(inbound: InboundPdu, reason: string): Promise<HandlerOutcome> {
    // A copy parked by this process and not yet picked up (a redelivery whose ack was lost).
    if (this.parkedHere.has(inbound.eventId)) return ack();
    // Held before publishing: the parked consumer may pick the copy up before publish returns.
    this.hold(inbound.roomId);
    this.parkedHere.add(inbound.eventId);
    const unhold = () => {
      if (this.parkedHere.delete(inbound.eventId)) this.release(inbound.roomId);
    };
    try {
      const parked: ParkedPdu = { inbound, parkedAt: Date.now(), reason };
      const result = await this.bus.publish(this.topology.parkedPdu.subjectFor(inbound.roomId), parked, { messageId: parkedMessageId(inbound) });
      // Already parked (a redelivery after a crash between publish and ack): that copy holds the room.
      if (result.duplicate) unhold();
    } catch (err) {
      unhold();
      throw err;
    }
    return ack();
  }

  /** The parked consumer: one PDU of a room at a time, retried on transient remote failures until its budget is spent. */
  async onParkedMessage(message: ReceivedMessage<ParkedPdu>): Promise<HandlerOutcome> {
    const { inbound } = message.data;
    // Parked before a restart (or by another replica): hold the room now, so its new PDUs queue behind this one.
    if (!this.parkedHere.delete(inbound.eventId)) this.hold(inbound.roomId);
    // Waiting for the room's turn and retrying both take long: keep the delivery from being redelivered meanwhile.
    const keepAlive = setInterval(() => message.working(), 5_000);
    const { signal } = this.stopping;
    try {
      return await this.turns.run(inbound.roomId, async () => (signal.aborted ? nak(0) : this.handleWithinBudget(message.data, () => message.working(), signal)));
    } finally {
      clearInterval(keepAlive);
      this.release(inbound.roomId);
    }
  }

  private async handleWithinBudget({ inbound, parkedAt }: ParkedPdu, working: () => void, signal: AbortSignal): Promise<HandlerOutcome> {
    const silent = this.silentOrigin(inbound, parkedAt);
    if (silent) return this.handleLocallyOrGiveUp(inbound, silent);
    const startedAt = Date.now();
    const deadline = startedAt + this.limits.budgetMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await withRemoteBudget(deadline, () => this.remote.handle(inbound, working), signal);
        return ack();
      } catch (err) {
        // Shutting down: back to the bus, redelivered on the next start with a new budget.
        if (signal.aborted) return nak(0);
        const what = `${inbound.eventId} in ${inbound.roomId} from ${inbound.origin}`;
        if (err instanceof PoisonMessageError || (err instanceof FederationClientError && !isTransient(err))) return term(`parked ${what}: ${describeError(err)}`);
        if (!isTransient(err)) throw err;
        const pause = Math.min(this.limits.maxRetryDelayMs, this.limits.retryDelayMs * 2 ** (attempt - 1));
        if (Date.now() + pause >= deadline) {
          this.rememberSilent(inbound);
          return term(
            `gave up on parked ${what} after ${attempt} attempt(s) in ${Date.now() - startedAt} ms (budget ${this.limits.budgetMs} ms): ` +
              `the remote servers did not let its gap be filled; last failure: ${describeError(err)}`,
          );
        }
        await sleep(pause, signal);
        working();
      }
    }
  }

  /**
   * The origin let an earlier PDU of this room run out of its budget while this one was already parked: do not
   * spend another budget on it (a batch of gapped PDUs from a tarpitting server would hold the room for one
   * budget each). What needs no remote call is still handled; PDUs parked later get their own budget.
   */
  private async handleLocallyOrGiveUp(inbound: InboundPdu, silent: Silence): Promise<HandlerOutcome> {
    try {
      await this.local.handle(inbound);
      return ack();
    } catch (err) {
      if (err instanceof PoisonMessageError) return term(`parked ${inbound.eventId} in ${inbound.roomId} from ${inbound.origin}: ${describeError(err)}`);
      if (!(err instanceof RemoteIoNeeded)) throw err;
      return term(
        `gave up on parked ${inbound.eventId} in ${inbound.roomId} from ${inbound.origin} at once: ${err.message}, and gap filling from ` +
          `${inbound.origin} for ${silent.eventId} in this room ran out of its budget at ${new Date(silent.at).toISOString()}, after this was parked`,
      );
    }
  }

  private silentKey(inbound: InboundPdu): string {
    return `${inbound.roomId}\u0000${inbound.origin}`;
  }

  private silentOrigin(inbound: InboundPdu, parkedAt: number): Silence | undefined {
    const key = this.silentKey(inbound);
    const silent = this.silentOrigins.peek(key);
    if (!silent) return undefined;
    // Long enough ago that the origin deserves another budget, whatever was parked before.
    if (silent.at + this.limits.budgetMs <= Date.now()) {
      this.silentOrigins.delete(key);
      return undefined;
    }
    return parkedAt <= silent.at ? silent : undefined;
  }

  private rememberSilent(inbound: InboundPdu): void {
    this.silentOrigins.set(this.silentKey(inbound), { at: Date.now(), eventId: inbound.eventId });
  }

  private hold(roomId: string): void {
    this.parked.set(roomId, (this.parked.get(roomId) ?? 0) + 1);
  }

  private release(roomId: string): void {
    const count = (this.parked.get(roomId) ?? 0) - 1;
    if (count > 0) this.parked.set(roomId, count);
    else this.parked.delete(roomId);
  }
}

/**
 * One parked copy per inbound message: a redelivery of the same message (a crash between publish and ack) is
 * deduplicated, while the same event sent again by its origin in a new transaction is parked again.
 */
export function parkedMessageId(inbound: InboundPdu): string {
  return `parked:${inbound.eventId}:${inbound.origin}:${inbound.txnId}`;
}
