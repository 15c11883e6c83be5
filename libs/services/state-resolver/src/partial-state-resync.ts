// A room joined with partial state (send_join with omit_members) is in use at once; this fetches its full
// state in the background: /state_ids at our join (then the events we lack, one by one or with /state),
// verified and kept as outliers; the members the resident named join the state before our join; every event
// since our join is checked again against the state now known (one that fails is rejected with the reason
// kept: it was accepted only because the members were missing); then current state and joined servers are
// computed again and the room stops being partial. Each step can be repeated, and the partial-state record
// goes last: a restart halfway resumes the resync. With elastic ownership a resync works under the lease
// holding of its room's partition it began under: it stops when the partition goes (`stopRooms`), and each of its
// writes is refused once that holding is over, so a replica that lost the room writes nothing more in it — by this
// replica's check first, and by the store itself (the room's fence) for the writes that change what the room holds.
import { FederationApi, type KeyRing } from '@fedgate/federation-client';
import { roomVersionRules, type RoomVersionRules } from '@fedgate/protocol';
import { isStateEvent, stateMapKey, toRoomEvent } from '@fedgate/room-state';
import { CommitFencedError, type CommitFence, type EventRecord, type PartialStateRoom, type RoomWriteFence, type Store } from '@fedgate/store';
import { describeError, MissingStateError } from './errors';
import { EventGraph } from './event-graph';
import { OutlierImporter } from './outliers';
import { budgetedFederation, withRemoteBudget, type FederationCalls } from './remote-budget';
import { checkedWrites } from './resync-writes';
import type { RoomLocks } from './room-locks';
import type { RoomTimeline } from './room-timeline';
import { fetchStateAt } from './state-at-fetch';
import { toRoomStateMap, toStoreStateMap } from './state-keys';

const CREATE_KEY = stateMapKey('m.room.create', '');
const MEMBER_PREFIX = 'm.room.member\u0000';

export interface ResyncLimits {
  /** Above this many events we lack, one /state call instead of one /event per event. */
  maxSingleFetches: number;
  /** Delay before the first retry after every server failed; doubled up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** A remote call waits at most this long (a /state of a large room is slow); a stopped resync waits no more at all. */
  callTimeoutMs: number;
}

export const DEFAULT_RESYNC_LIMITS: ResyncLimits = { maxSingleFetches: 50, retryDelayMs: 2_000, maxRetryDelayMs: 5 * 60_000, callTimeoutMs: 60_000 };

/** What one resync did: the events re-checked, and those the full state rejected (with why). */
export interface ResyncOutcome {
  roomId: string;
  server: string;
  members: number;
  rechecked: number;
  rejected: Array<{ eventId: string; reason: string }>;
}

export class ResyncFailed extends Error {
  constructor(readonly roomId: string, readonly failures: string[]) {
    super(`full state of ${roomId} not fetched: ${failures.join('; ')}`);
    this.name = 'ResyncFailed';
  }
}

/** The resync was stopped (its room's partition released, or the resolver stopping): the room stays partial for whoever owns it next. */
export class ResyncStopped extends Error {
  constructor(readonly roomId: string) {
    super(`resync of ${roomId} stopped: its partition is no longer worked on here`);
    this.name = 'ResyncStopped';
  }
}

/** A resync's write refused: the lease holding of the room's partition it began under is over. Nothing of the write is done. */
export class ResyncFencedError extends CommitFencedError {
  constructor(roomId: string, readonly step: string, epoch: number | undefined, heldEpoch: number | undefined) {
    super(roomId, `resync:${step}`, epoch, heldEpoch);
    this.message =
      epoch === undefined
        ? `resync of ${roomId} refused before ${step}: this replica does not hold the room's partition`
        : `resync of ${roomId} refused before ${step}: begun under lease epoch ${epoch}, ${heldEpoch === undefined ? 'the lease is no longer held here (lost or handed over)' : `the partition is now held under epoch ${heldEpoch}`}`;
    this.name = 'ResyncFencedError';
  }
}

/**
 * Elastic ownership: the lease holding a resync works under — the fencing token of the room's partition while
 * this replica holds its lease fresh, undefined otherwise — and who hears of a refused write (log, metric).
 */
export interface ResyncFencing {
  fenceFor(roomId: string): CommitFence | undefined;
  refused(error: ResyncFencedError): void;
}

/** What one run works under: stopped by its abort signal, its writes fenced by the lease holding it began under. */
interface RunHolding {
  roomId: string;
  signal: AbortSignal;
  fence: CommitFence | undefined;
}

interface RunGuard extends RunHolding {
  /** The store, each write of room data checked first (`guard`). */
  store: Store;
  importer: OutlierImporter;
}

const roomFence = (run: RunHolding): RoomWriteFence | undefined => run.fence && { roomId: run.roomId, ...run.fence };

export class PartialStateResync {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<ResyncOutcome | undefined>>();
  private readonly attempts = new Map<string, number>();
  private readonly aborts = new Map<string, AbortController>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    private readonly keyRing: KeyRing,
    private readonly federation: FederationCalls,
    private readonly serverName: string,
    private readonly limits: ResyncLimits = DEFAULT_RESYNC_LIMITS,
    private readonly onFailure: (err: unknown) => void = () => undefined,
    private readonly onResynced: (outcome: ResyncOutcome) => void = () => undefined,
    private readonly fencing?: ResyncFencing,
  ) {
  }

  /** Starts (or resumes) the resync of every partial room `owns` says is ours, in the background. */
  async resumeAll(owns: (roomId: string) => boolean): Promise<string[]> {
    const rooms = (await this.store.partialStateRooms.list()).map((r) => r.roomId).filter(owns);
    for (const roomId of rooms) this.start(roomId);
    return rooms;
  }

  /** Starts the room's resync in the background, retried with backoff until it is done, `stop()` or `stopRooms`. */
  start(roomId: string, delayMs = 0): void {
    if (this.stopped || this.timers.has(roomId)) return;
    const under = this.running.get(roomId);
    if (under) {
      // A run stopped (its partition released) that has not noticed yet, the partition taken back meanwhile: the
      // room's resync starts again once that run is over, or it would wait for the next takeover.
      if (this.aborts.get(roomId)?.signal.aborted === true) void under.catch(() => undefined).then(() => this.start(roomId));
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(roomId);
      const work = this.resync(roomId);
      const signal = this.aborts.get(roomId)?.signal;
      void work.then(
        (outcome) => {
          this.attempts.delete(roomId);
          if (outcome) this.onResynced(outcome);
        },
        (err) => {
          // Stopped on purpose: the next owner of the room's partition resumes it, not a retry here.
          if (err instanceof ResyncStopped || signal?.aborted === true) {
            this.attempts.delete(roomId);
            return;
          }
          this.onFailure(err);
          const n = (this.attempts.get(roomId) ?? 0) + 1;
          this.attempts.set(roomId, n);
          this.start(roomId, Math.min(this.limits.retryDelayMs * 2 ** (n - 1), this.limits.maxRetryDelayMs));
        },
      );
    }, delayMs);
    timer.unref();
    this.timers.set(roomId, timer);
  }

  /** The resync under way (or a new one): resolves when the room's full state is in, undefined if the room was not partial. */
  resync(roomId: string): Promise<ResyncOutcome | undefined> {
    const under = this.running.get(roomId);
    if (under) return under;
    const abort = new AbortController();
    this.aborts.set(roomId, abort);
    const holding: RunHolding = { roomId, signal: abort.signal, fence: this.fencing?.fenceFor(roomId) };
    const store = checkedWrites(this.store, {
      check: (write) => this.guard(holding, write),
      fence: roomFence(holding),
      refused: (error, write) => this.storeRefused(holding, write, error),
    });
    const work = this.run({ ...holding, store, importer: new OutlierImporter(store, this.keyRing) }).finally(() => {
      this.running.delete(roomId);
      if (this.aborts.get(roomId) === abort) this.aborts.delete(roomId);
    });
    this.running.set(roomId, work);
    return work;
  }

  /**
   * Stops the resyncs of these rooms (their partition released or lost): the scheduled ones are not started and
   * the ones under way stop at their next step — a fetch in flight is no longer waited for — with no further
   * write. Their rooms stay partial, so the partition's next owner resumes them.
   */
  stopRooms(which: (roomId: string) => boolean): string[] {
    const stopped: string[] = [];
    for (const [roomId, timer] of this.timers) {
      if (!which(roomId)) continue;
      clearTimeout(timer);
      this.timers.delete(roomId);
      stopped.push(roomId);
    }
    for (const [roomId, abort] of this.aborts) {
      if (!which(roomId)) continue;
      abort.abort(new ResyncStopped(roomId));
      stopped.push(roomId);
    }
    for (const roomId of stopped) this.attempts.delete(roomId);
    return stopped;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const [roomId, abort] of this.aborts) abort.abort(new ResyncStopped(roomId));
  }

  /**
   * Before each write: the run was not stopped, and (elastic) the lease holding it began under is still this
   * replica's, fresh. A refusal is told to `fencing.refused` and thrown; the write is not done.
   */
  private guard(run: RunHolding, step: string): void {
    if (run.signal.aborted) throw new ResyncStopped(run.roomId);
    if (!this.fencing) return;
    const held = this.fencing.fenceFor(run.roomId);
    if (run.fence && held && held.partition === run.fence.partition && held.epoch === run.fence.epoch) return;
    const error = new ResyncFencedError(run.roomId, step, run.fence?.epoch, held?.epoch);
    this.fencing.refused(error);
    throw error;
  }

  /** The store refused a write by the room's fence, which this replica's check had let through (a pause, a slow clock). */
  private storeRefused(run: RunHolding, write: string, error: CommitFencedError): ResyncFencedError {
    const refused = new ResyncFencedError(run.roomId, `${write} (refused by the store)`, run.fence?.epoch, error.roomEpoch);
    this.fencing?.refused(refused);
    return refused;
  }

  /** The run's remote calls: each ends when the run is stopped, and its answer is taken only while the run may still write. */
  private apiFor(run: RunHolding): FederationApi {
    const calls = budgetedFederation(this.federation, this.limits.callTimeoutMs);
    const checked = async <T>(answer: Promise<T>, call: string): Promise<T> => {
      const answered = await answer;
      this.guard(run, `taking the answer to ${call}`);
      return answered;
    };
    return new FederationApi({
      getJson: (to, path, options) => checked(calls.getJson(to, path, options), `GET ${path.split('?')[0]} on ${to}`),
      putJson: (to, path, body, options) => checked(calls.putJson(to, path, body, options), `PUT ${path.split('?')[0]} on ${to}`),
      postJson: (to, path, body, options) => checked(calls.postJson(to, path, body, options), `POST ${path.split('?')[0]} on ${to}`),
    });
  }

  private async run(run: RunGuard): Promise<ResyncOutcome | undefined> {
    const { roomId } = run;
    if (this.fencing && !run.fence) this.guard(run, 'start');
    const partial = await run.store.partialStateRooms.get(roomId);
    if (!partial) return undefined;
    const [room, join, refs] = await Promise.all([run.store.rooms.get(roomId), run.store.events.get(partial.joinEventId), run.store.state.getForEvent(partial.joinEventId)]);
    if (!room || !join || join.outlier || !refs) {
      // The join never entered the room (cut short before its commit): nothing here is partial.
      await run.store.partialStateRooms.finish(roomId);
      return undefined;
    }
    const rules = roomVersionRules(room.roomVersion);
    const servers = [...new Set([partial.resident, ...partial.serversInRoom])].filter((s) => s !== this.serverName);
    const failures: string[] = [];
    for (const server of servers) {
      let members: Map<string, string>;
      try {
        this.guard(run, `asking ${server}`);
        const before = toRoomStateMap((await run.store.state.load(refs.before))!);
        // No end but the abort: a stopped resync does not wait for the answer in flight.
        members = await withRemoteBudget(Number.MAX_SAFE_INTEGER, () => this.membersFrom(server, partial, rules, before, run), run.signal);
      } catch (err) {
        if (run.signal.aborted || err instanceof ResyncFencedError) throw err;
        failures.push(`${server}: ${describeError(err)}`);
        continue;
      }
      return this.locks.run(roomId, () => this.apply(partial, join, rules, members, server, run));
    }
    this.guard(run, 'giving up');
    throw new ResyncFailed(roomId, failures.length > 0 ? failures : ['no other server in the room to ask']);
  }

  /**
   * The membership events of the state before our join, as `server` tells it: every event verified, checked
   * against its own auth events, of this room; an answer without the room's create event, or naming another
   * one, is refused whole. Only member keys the partial state lacks are taken.
   */
  private async membersFrom(server: string, partial: PartialStateRoom, rules: RoomVersionRules, before: Map<string, string>, run: RunGuard): Promise<Map<string, string>> {
    const { roomId, joinEventId } = partial;
    const deps = { api: this.apiFor(run), store: run.store, importer: run.importer, serverName: this.serverName, maxSingleFetches: this.limits.maxSingleFetches };
    const { stateIds, graph, path } = await fetchStateAt(deps, server, roomId, joinEventId, rules, false);
    this.guard(run, `taking the state ${server} gave`);
    const full = OutlierImporter.stateFrom(stateIds, graph, roomId);
    if (full.get(CREATE_KEY) !== before.get(CREATE_KEY)) {
      const reason = `its state at ${joinEventId} names the create event ${String(full.get(CREATE_KEY))}, not the room's ${String(before.get(CREATE_KEY))}`;
      await run.store.audit.append({ direction: 'out', origin: this.serverName, destination: server, method: 'GET', path, ts: Date.now(), durationMs: 0, status: 200, outcome: 'rejected', reason: 'state_answer_refused', details: { roomId, error: reason } });
      throw new Error(reason);
    }
    const members = new Map<string, string>();
    for (const [key, id] of full) if (key.startsWith(MEMBER_PREFIX) && !before.has(key)) members.set(key, id);
    return members;
  }

  /** Under the room's lock: the full state before our join, every later event checked again, then current state. */
  private async apply(partial: PartialStateRoom, join: EventRecord, rules: RoomVersionRules, members: Map<string, string>, server: string, run: RunGuard): Promise<ResyncOutcome> {
    const { roomId } = partial;
    const refs = (await run.store.state.getForEvent(join.eventId))!;
    const before = toRoomStateMap((await run.store.state.load(refs.before))!);
    for (const [key, id] of members) before.set(key, id);
    const beforeId = await run.store.state.save(roomId, toStoreStateMap(before), refs.before);
    const afterId = await run.store.state.derive(roomId, beforeId, [{ type: 'm.room.member', stateKey: join.stateKey!, eventId: join.eventId }]);
    await run.store.state.setForEvent(join.eventId, { before: beforeId, after: afterId });

    const outcome: ResyncOutcome = { roomId, server, members: members.size, rechecked: 0, rejected: [] };
    for (const record of await this.eventsSince(join, run)) {
      this.guard(run, `re-checking ${record.eventId}`);
      outcome.rechecked++;
      let evaluation;
      try {
        evaluation = await this.timeline.evaluate(record.eventId, record.pdu, rules, { fullState: true });
      } catch (err) {
        if (err instanceof MissingStateError) continue; // not built on our join's state: nothing to check again
        throw err;
      }
      const status = record.status === 'accepted' && evaluation.status !== 'accepted' ? 'rejected' : record.status;
      const event = toRoomEvent(record.pdu, record.eventId);
      const eventBefore = await run.store.state.save(roomId, toStoreStateMap(evaluation.before), evaluation.baseSnapshotId);
      const eventAfter = status !== 'rejected' && isStateEvent(event) ? await run.store.state.derive(roomId, eventBefore, [{ type: event.type, stateKey: event.state_key!, eventId: record.eventId }]) : eventBefore;
      await run.store.state.setForEvent(record.eventId, { before: eventBefore, after: eventAfter });
      if (status !== record.status) {
        const reason = `re-checked against the full state (partial-state join): ${evaluation.reason ?? 'not allowed'}`;
        await run.store.events.setOutcome(record.eventId, { status, reason, outlier: false });
        outcome.rejected.push({ eventId: record.eventId, reason });
        await this.replaceExtremity(roomId, record, run);
      }
    }
    // A run cut short between an event's rejection and its leaving the extremities left it there (this run
    // skips rejected events): it goes now, before current state is computed from the extremities.
    await this.dropRejectedExtremities(roomId, run);

    // Current state's writes are the timeline's, not checked one by one.
    this.guard(run, 'current state');
    const extremities = await run.store.rooms.getForwardExtremities(roomId);
    const head = extremities[0] ?? join.eventId;
    const headAfter = (await run.store.state.getForEvent(head))?.after ?? afterId;
    await this.timeline.updateCurrentState(roomId, head, headAfter, rules, new EventGraph(run.store), { fullState: true, fence: roomFence(run) }).catch((error: unknown) => {
      throw error instanceof CommitFencedError ? this.storeRefused(run, 'current state', error) : error;
    });
    await run.store.partialStateRooms.finish(roomId);
    return outcome;
  }

  private async dropRejectedExtremities(roomId: string, run: RunGuard): Promise<void> {
    const extremities = await run.store.events.getMany(await run.store.rooms.getForwardExtremities(roomId));
    for (const record of extremities.values()) {
      if (record.status !== 'rejected') continue;
      await this.replaceExtremity(roomId, record, run);
    }
  }

  /** A rejected event stops being a forward extremity; its accepted prev events stand in for it. */
  private async replaceExtremity(roomId: string, record: EventRecord, run: RunGuard): Promise<void> {
    const extremities = await run.store.rooms.getForwardExtremities(roomId);
    if (!extremities.includes(record.eventId)) return;
    const prevs = [...(await run.store.events.getMany(record.prevEventIds)).values()].filter((p) => p.status === 'accepted' && !p.outlier).map((p) => p.eventId);
    await run.store.rooms.updateForwardExtremities(roomId, { add: prevs, remove: [record.eventId] });
  }

  /** The room's timeline events from our join's depth on, in an order where prev events come first (depth, then arrival). */
  private async eventsSince(join: EventRecord, run: RunGuard): Promise<EventRecord[]> {
    const extremities = [...(await run.store.events.getMany(await run.store.rooms.getForwardExtremities(join.roomId))).values()];
    const deepest = Math.max(join.depth, ...extremities.map((e) => e.depth));
    const found: EventRecord[] = [];
    const window = 100;
    for (let low = join.depth; low <= deepest; low += window) {
      found.push(...(await run.store.events.byDepthRange({ roomId: join.roomId, minDepth: low, maxDepth: low + window - 1, limit: 100_000, excludeRejected: false })));
    }
    return found.filter((e) => !e.outlier && e.eventId !== join.eventId && e.status !== 'rejected').sort((a, b) => a.depth - b.depth || a.receivedTs - b.receivedTs);
  }
}
