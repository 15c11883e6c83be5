// The commits of a run of inbound PDUs, held back and written as one unit (issue 19: one store transaction per event
// before). While the bus hands the partition consumer more of a run, RoomTimeline holds each commit's writes here
// instead of writing them; the run's end (the room log flush, the consumer's beforeSettle) writes them all with
// `commits.writeAll`, before anything of them is published or acked. Meanwhile every read through `store` sees them as
// if written, and any other write through it writes them first, so the store sees the same writes in the same order.
// A crash before the write loses nothing acked (the bus redelivers the run); a failed write is reported lost for the
// rooms it held, so the runs that held them are redelivered too.
import type { EventCommitWrites, EventRecord, EventStateRefs, RoomRecord, Store } from '@fedgate/store';

/** Reads whose data nothing held here changes: no need to write what is held first. */
const UNAFFECTED_READ = /^(get|list|load|find|count|pending|claims|roomsOf|is|has)/;

type Repository = Record<string, (...args: unknown[]) => unknown>;

export class RunWrites {
  private held: EventCommitWrites[] = [];
  private readonly events = new Map<string, EventRecord>();
  private readonly refs = new Map<string, EventStateRefs>();
  private readonly currentStates = new Map<string, string>();
  private readonly extremityChanges = new Map<string, Array<{ add: string[]; remove: string[] }>>();
  private writing: Promise<void> = Promise.resolve();
  /** What the reads and writes of state-resolver go through. */
  readonly store: Store;

  constructor(
    private readonly raw: Store,
    /** The rooms whose held commits a failed write lost (their outbox entries must not go out; their runs must be redelivered). */
    private readonly onLost: (roomIds: Set<string>, error: unknown) => void = () => undefined,
  ) {
    this.store = this.overlay();
  }

  get holding(): boolean {
    return this.held.length > 0;
  }

  /** Holds a commit's writes (a room's create event is never held: its room record is not overlaid). */
  hold(writes: EventCommitWrites): void {
    const { event } = writes;
    this.held.push(writes);
    this.events.set(event.eventId, event);
    this.refs.set(event.eventId, writes.stateRefs);
    if (writes.currentStateId !== undefined) this.currentStates.set(event.roomId, writes.currentStateId);
    if (writes.forwardExtremities) {
      const changes = this.extremityChanges.get(event.roomId);
      if (changes) changes.push(writes.forwardExtremities);
      else this.extremityChanges.set(event.roomId, [writes.forwardExtremities]);
    }
  }

  /** Writes everything held, in one `writeAll`, after any write under way. */
  flush(): Promise<void> {
    const done = this.writing.then(() => this.writeHeld());
    this.writing = done.catch(() => undefined);
    return done;
  }

  private async writeHeld(): Promise<void> {
    const batch = this.held;
    if (batch.length === 0) return;
    this.held = [];
    try {
      await this.raw.commits.writeAll(batch);
    } catch (err) {
      this.onLost(new Set(batch.map((w) => w.event.roomId)), err);
      throw err;
    } finally {
      // Written or lost: from now on the store answers for them (and what was held meanwhile stays overlaid).
      this.reindex();
    }
  }

  private reindex(): void {
    this.events.clear();
    this.refs.clear();
    this.currentStates.clear();
    this.extremityChanges.clear();
    for (const w of this.held) {
      this.events.set(w.event.eventId, w.event);
      this.refs.set(w.event.eventId, w.stateRefs);
      if (w.currentStateId !== undefined) this.currentStates.set(w.event.roomId, w.currentStateId);
      if (w.forwardExtremities) this.extremityChanges.set(w.event.roomId, [...(this.extremityChanges.get(w.event.roomId) ?? []), w.forwardExtremities]);
    }
  }

  /** A held record as the store would answer once written: an event it held already (an outlier) only gets the outcome. */
  private merged(held: EventRecord, stored: EventRecord | undefined): EventRecord {
    if (!stored) return held;
    const record: EventRecord = { ...stored, status: held.status, outlier: held.outlier };
    if (held.reason === undefined) delete record.reason;
    else record.reason = held.reason;
    return record;
  }

  /** Runs `fn` once what is held is written (at once when nothing is). */
  private after<T>(fn: () => T): T | Promise<Awaited<T>> {
    if (!this.holding) return fn();
    return this.flush().then(() => fn() as Awaited<T>);
  }

  private writesFirst(repository: Repository, except: RegExp = UNAFFECTED_READ): Repository {
    return new Proxy(repository, {
      get: (target, key) => {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => unknown).bind(target);
        if (typeof key === 'string' && except.test(key)) return method;
        return (...args: unknown[]) => this.after(() => method(...args));
      },
    });
  }

  private overlay(): Store {
    const raw = this.raw;
    const events = {
      get: async (eventId: string) => {
        const stored = await raw.events.get(eventId);
        const held = this.events.get(eventId);
        return held ? this.merged(held, stored) : stored;
      },
      getMany: async (eventIds: string[]) => {
        const found = await raw.events.getMany(eventIds);
        for (const id of eventIds) {
          const held = this.events.get(id);
          if (held) found.set(id, this.merged(held, found.get(id)));
        }
        return found;
      },
      missing: async (eventIds: string[]) => (await raw.events.missing(eventIds)).filter((id) => !this.events.has(id)),
    };
    const state = {
      getForEvent: async (eventId: string) => this.refs.get(eventId) ?? raw.state.getForEvent(eventId),
      stateAfterEvent: async (eventId: string) => {
        const refs = this.refs.get(eventId);
        return refs ? raw.state.load(refs.after) : raw.state.stateAfterEvent(eventId);
      },
      stateBeforeEvent: async (eventId: string) => {
        const refs = this.refs.get(eventId);
        return refs ? raw.state.load(refs.before) : raw.state.stateBeforeEvent(eventId);
      },
    };
    const rooms = {
      get: async (roomId: string): Promise<RoomRecord | undefined> => {
        const room = await raw.rooms.get(roomId);
        const currentStateId = this.currentStates.get(roomId);
        return room && currentStateId !== undefined ? { ...room, currentStateId } : room;
      },
      getForwardExtremities: async (roomId: string) => {
        const stored = await raw.rooms.getForwardExtremities(roomId);
        const changes = this.extremityChanges.get(roomId);
        if (!changes) return stored;
        const now = new Set(stored);
        for (const change of changes) {
          for (const id of change.add) now.add(id);
          for (const id of change.remove) if (!change.add.includes(id)) now.delete(id);
        }
        return [...now].sort();
      },
    };
    // A snapshot row is content-addressed and named by nothing until state refs or a room name it: no need to wait.
    const snapshotWrites = /^(get|list|load|find|count|save|derive)/;
    const overlaid: Record<string, object> = {
      events: this.overlaid(raw.events as unknown as Repository, events),
      state: this.overlaid(raw.state as unknown as Repository, state, snapshotWrites),
      rooms: this.overlaid(raw.rooms as unknown as Repository, rooms, /^(getJoinedServers|roomsOfServer)$/),
      // Records held are not in the store yet: anything asking about pending commits sees them written first.
      pendingCommits: this.writesFirst(raw.pendingCommits as unknown as Repository, /^$/),
      commits: {
        write: (writes: EventCommitWrites) => this.after(() => raw.commits.write(writes)),
        writeAll: (writes: readonly EventCommitWrites[]) => this.after(() => raw.commits.writeAll(writes)),
      },
    };
    const wrapped = new Map<PropertyKey, unknown>();
    return new Proxy(raw, {
      get: (target, key) => {
        if (typeof key === 'string' && key in overlaid) return overlaid[key];
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value === 'function') return (value as (...args: unknown[]) => unknown).bind(target);
        if (typeof value !== 'object' || value === null) return value;
        if (!wrapped.has(key)) wrapped.set(key, this.writesFirst(value as Repository));
        return wrapped.get(key);
      },
    });
  }

  /** The repository with `own` methods in place of its own, the rest reads as they are and writes after what is held. */
  private overlaid(repository: Repository, own: Record<string, unknown>, except: RegExp = /^$/): Repository {
    const rest = this.writesFirst(repository, except);
    return new Proxy(repository, {
      get: (_target, key) => (typeof key === 'string' && key in own ? own[key] : Reflect.get(rest, key)),
    });
  }
}
