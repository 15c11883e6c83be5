// Reads of what only a room partition's lease holder writes, answered from memory (issue 19, distributed mode:
// ~15 of the state-resolver's ~28 MongoDB round trips per inbound PDU were reads of its own writes): the room
// record, forward extremities, joined servers, partial-state record, and event records and state refs this
// replica wrote or read while holding the partition.
//
// Every entry is stamped with the epoch of the partition's lease it was taken under, and is used only while this
// replica holds that very lease, fresh. A replica that lost its lease (stalled past it, or rebalanced away) reads
// the store; one that gets the partition back holds a new epoch, so nothing from its earlier holding is used: the
// owner in between may have written anything. A write by this replica updates the entries it changes (or drops
// them when the result is not known), and a read that raced a write of the same room does not fill the cache.
import type { EventCommitWrites, EventRecord, EventStateRefs, PartialStateRoom, RoomRecord, Store } from '@fedgate/store';
import { LRUCache } from 'lru-cache';
import { copyJson } from './json-copy';

/** Which holding of a room's partition this replica is in now: the lease's epoch while held and fresh, else undefined. */
export type RoomHolding = (roomId: string) => number | undefined;

/** Rooms and events remembered (a room entry is a few hundred bytes; an event record ~1–2 KiB). */
export const OWNED_ROOM_CACHE_LIMITS = { rooms: 10_000, events: 5_000 };

interface RoomEntry {
  epoch: number;
  record?: RoomRecord;
  extremities?: string[];
  joinedServers?: string[];
  /** null: known not to be partial. */
  partial?: PartialStateRoom | null;
}

interface EventEntry {
  epoch: number;
  roomId: string;
  record?: EventRecord;
  refs?: EventStateRefs;
  /** Known not to be in the store (remembered only when every room is held alike: the sole writer). */
  absent?: true;
}

/**
 * `repo` with some methods replaced; of the others (prototype methods included), those named in `reads` are bound to
 * it as they are, and any other — a write this cache was not taught about — forgets everything before and after it
 * runs, so a method added to a port later can cost hits but never leave an answer stale.
 */
function withOverrides<T extends object>(repo: T, overrides: Partial<T>, reads: ReadonlyArray<keyof T>, forgetAll: () => void): T {
  return new Proxy(repo, {
    get: (target, key) => {
      if (Object.prototype.hasOwnProperty.call(overrides, key)) return overrides[key as keyof T];
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      const method = (value as (...args: unknown[]) => unknown).bind(target);
      if (reads.includes(key as keyof T)) return method;
      return async (...args: unknown[]) => {
        forgetAll();
        try {
          return await method(...args);
        } finally {
          forgetAll();
        }
      };
    },
  });
}

const sortedSet = (ids: Iterable<string>) => [...new Set(ids)].sort();

/** `current` with `add` added and `remove` removed (what is in both stays), as the stores apply such a change. */
function applyChange(current: readonly string[], change: { add: string[]; remove: string[] }): string[] {
  const keep = new Set(change.add);
  const removed = new Set(change.remove.filter((id) => !keep.has(id)));
  return sortedSet([...current, ...change.add].filter((id) => !removed.has(id)));
}

export class OwnedRoomCache {
  private readonly rooms: LRUCache<string, RoomEntry>;
  private readonly events: LRUCache<string, EventEntry>;
  /** Per room, bumped when a write of it begins: a read that saw it change does not fill the cache. */
  private readonly writes = new Map<string, number>();
  /** Bumped by every event write whose room is not known up front (setOutcome, redactions). */
  private eventWrites = 0;

  constructor(
    private readonly holding: RoomHolding,
    limits = OWNED_ROOM_CACHE_LIMITS,
    /**
     * The holding is the same for every room (the embedded gateway, sole writer): an event the store does not hold is
     * remembered absent without knowing its room (issue 19: the event being committed, and a run's held events, were
     * asked of the store again and again). Every write of an event through here forgets it, like any other entry.
     */
    private readonly absenceRemembered = false,
  ) {
    this.rooms = new LRUCache({ max: limits.rooms });
    this.events = new LRUCache({ max: limits.events });
  }

  /** The store with these reads answered from memory while the room's partition is held; everything else as it is. */
  wrap(store: Store): Store {
    return {
      ...store,
      rooms: this.wrapRooms(store),
      partialStateRooms: this.wrapPartialStateRooms(store),
      events: this.wrapEvents(store),
      state: this.wrapState(store),
      commits: withOverrides(
        store.commits,
        {
          write: async (writes) => (await this.commit([writes], () => store.commits.write(writes).then((r) => [r])))[0]!,
          writeAll: (writes) => this.commit(writes, () => store.commits.writeAll(writes)),
        },
        [],
        this.forgetAll,
      ),
      redactions: withOverrides(store.redactions, { apply: (claim) => this.eventWrite([claim.targetEventId], () => store.redactions.apply(claim)) }, ['addClaim', 'claimsOn', 'openClaimTargets'], this.forgetAll),
    };
  }

  /** Forgets the rooms of a partition handed over (their entries could not be used again anyway: a new holding has a new epoch). */
  forget(inPartition: (roomId: string) => boolean): void {
    for (const roomId of [...this.rooms.keys()]) if (inPartition(roomId)) this.rooms.delete(roomId);
    for (const roomId of [...this.writes.keys()]) if (inPartition(roomId)) this.writes.delete(roomId);
    for (const [eventId, entry] of [...this.events.entries()]) if (inPartition(entry.roomId)) this.events.delete(eventId);
  }

  /** Forgets everything: what an unknown write may have changed. */
  private readonly forgetAll = (): void => {
    this.rooms.clear();
    this.events.clear();
    // A read under way finds its room's entry (or its event's) gone, and does not fill it.
    this.eventWrites++;
  };

  private room(roomId: string): RoomEntry | undefined {
    const epoch = this.holding(roomId);
    if (epoch === undefined) return undefined;
    const entry = this.rooms.get(roomId);
    if (entry?.epoch === epoch) return entry;
    const fresh: RoomEntry = { epoch };
    this.rooms.set(roomId, fresh);
    return fresh;
  }

  private event(eventId: string): EventEntry | undefined {
    const entry = this.events.get(eventId);
    return entry && this.holding(entry.roomId) === entry.epoch ? entry : undefined;
  }

  /** Reads one value of a room: from its entry while held, else from the store (filling the entry unless a write raced it). */
  private async roomRead<T>(roomId: string, cached: (entry: RoomEntry) => T | undefined, read: () => Promise<T>, fill: (entry: RoomEntry, value: T) => void): Promise<T> {
    const entry = this.room(roomId);
    const hit = entry && cached(entry);
    if (hit !== undefined) return hit;
    const writesBefore = this.writes.get(roomId) ?? 0;
    const value = await read();
    if (entry && (this.writes.get(roomId) ?? 0) === writesBefore && this.room(roomId) === entry) fill(entry, value);
    return value;
  }

  /** A write of a room: what it changes updated after it succeeds; on failure (what the store holds is unknown) the room forgotten. */
  private async roomWrite<T>(roomId: string, write: () => Promise<T>, update: (entry: RoomEntry, result: T) => void): Promise<T> {
    const epoch = this.holding(roomId);
    this.writes.set(roomId, (this.writes.get(roomId) ?? 0) + 1);
    let result: T;
    try {
      result = await write();
    } catch (err) {
      this.rooms.delete(roomId);
      throw err;
    }
    // Written under another holding than the one now (or none): what the store holds after it is not ours to know.
    if (epoch !== undefined && this.holding(roomId) === epoch) update(this.room(roomId)!, result);
    else this.rooms.delete(roomId);
    return result;
  }

  /** A write of events whose rooms are not given: the events forgotten, before and after. */
  private async eventWrite<T>(eventIds: string[], write: () => Promise<T>): Promise<T> {
    this.eventWrites++;
    for (const id of eventIds) this.events.delete(id);
    try {
      return await write();
    } finally {
      this.eventWrites++;
      for (const id of eventIds) this.events.delete(id);
    }
  }

  private rememberAbsent(eventIds: readonly string[]): void {
    const epoch = this.holding('');
    if (epoch === undefined) return;
    for (const id of eventIds) if (!this.events.has(id)) this.events.set(id, { epoch, roomId: '', absent: true });
  }

  private rememberEvent(record: EventRecord, epoch: number | undefined): void {
    if (epoch === undefined) return;
    const previous = this.events.get(record.eventId);
    this.events.set(record.eventId, { epoch, roomId: record.roomId, record: copyJson(record), refs: previous?.epoch === epoch ? previous.refs : undefined });
  }

  private wrapRooms(store: Store): Store['rooms'] {
    const rooms = store.rooms;
    return withOverrides(rooms, {
      get: (roomId) =>
        this.roomRead(
          roomId,
          (e) => (e.record ? { ...e.record } : undefined),
          () => rooms.get(roomId),
          (e, record) => (e.record = record ? { ...record } : undefined),
        ),
      ensure: (room) => this.roomWrite(room.roomId, () => rooms.ensure(room), (e, record) => (e.record = { ...record })),
      setCurrentState: (roomId, snapshotId, fence) =>
        this.roomWrite(roomId, () => rooms.setCurrentState(roomId, snapshotId, fence), (e) => {
          if (e.record) e.record = { ...e.record, currentStateId: snapshotId };
        }),
      getForwardExtremities: (roomId) =>
        this.roomRead(
          roomId,
          (e) => e.extremities?.slice(),
          () => rooms.getForwardExtremities(roomId),
          (e, ids) => (e.extremities = sortedSet(ids)),
        ),
      updateForwardExtremities: (roomId, change, fence) =>
        this.roomWrite(roomId, () => rooms.updateForwardExtremities(roomId, change, fence), (e) => {
          if (e.extremities) e.extremities = applyChange(e.extremities, change);
        }),
      getJoinedServers: (roomId) =>
        this.roomRead(
          roomId,
          (e) => e.joinedServers?.slice(),
          () => rooms.getJoinedServers(roomId),
          (e, servers) => (e.joinedServers = sortedSet(servers)),
        ),
      setJoinedServers: (roomId, servers, fence) => this.roomWrite(roomId, () => rooms.setJoinedServers(roomId, servers, fence), (e) => (e.joinedServers = sortedSet(servers))),
      updateJoinedServers: (roomId, change) =>
        this.roomWrite(roomId, () => rooms.updateJoinedServers(roomId, change), (e) => {
          if (e.joinedServers) e.joinedServers = applyChange(e.joinedServers, change);
        }),
    }, ['roomsOfServer'], this.forgetAll);
  }

  private wrapPartialStateRooms(store: Store): Store['partialStateRooms'] {
    const partial = store.partialStateRooms;
    return withOverrides(partial, {
      get: async (roomId) =>
        (await this.roomRead(
          roomId,
          (e) => (e.partial === undefined ? undefined : e.partial === null ? null : copyJson(e.partial)),
          async () => (await partial.get(roomId)) ?? null,
          (e, record) => (e.partial = record === null ? null : copyJson(record)),
        )) ?? undefined,
      begin: (room) => this.roomWrite(room.roomId, () => partial.begin(room), (e) => (e.partial = copyJson(room))),
      finish: (roomId, fence) => this.roomWrite(roomId, () => partial.finish(roomId, fence), (e) => (e.partial = null)),
    }, ['list'], this.forgetAll);
  }

  private wrapEvents(store: Store): Store['events'] {
    const events = store.events;
    const getMany = async (eventIds: string[]): Promise<Map<string, EventRecord>> => {
      const found = new Map<string, EventRecord>();
      const asked: string[] = [];
      for (const id of eventIds) {
        const entry = this.event(id);
        if (entry?.record) found.set(id, copyJson(entry.record));
        else if (!entry?.absent) asked.push(id);
      }
      if (asked.length === 0) return found;
      const writesBefore = this.eventWrites;
      const holdings = new Map<string, number | undefined>();
      const read = await events.getMany(asked);
      for (const [id, record] of read) {
        found.set(id, record);
        // An event write while this read was out may have changed what it returned: not remembered then.
        if (this.eventWrites !== writesBefore) continue;
        if (!holdings.has(record.roomId)) holdings.set(record.roomId, this.holding(record.roomId));
        this.rememberEvent(record, holdings.get(record.roomId));
      }
      if (this.absenceRemembered && this.eventWrites === writesBefore) this.rememberAbsent(asked.filter((id) => !read.has(id)));
      return found;
    };
    return withOverrides(events, {
      get: async (eventId) => (await getMany([eventId])).get(eventId),
      getMany,
      append: async (record) => {
        const epoch = this.holding(record.roomId);
        const { inserted } = await this.eventWrite([record.eventId], () => events.append(record));
        // Not inserted: the stored record (its first outcome) stays, and is read when wanted.
        if (inserted) this.rememberEvent(record, epoch === this.holding(record.roomId) ? epoch : undefined);
        return { inserted };
      },
      appendMany: async (records) => {
        const epochs = new Map(records.map((r) => [r.roomId, this.holding(r.roomId)]));
        const result = await this.eventWrite(
          records.map((r) => r.eventId),
          () => events.appendMany(records),
        );
        const inserted = new Set(result.inserted);
        for (const record of records) {
          const epoch = epochs.get(record.roomId);
          if (inserted.has(record.eventId) && epoch === this.holding(record.roomId)) this.rememberEvent(record, epoch);
        }
        return result;
      },
      setOutcome: (eventId, outcome, fence) => this.eventWrite([eventId], () => events.setOutcome(eventId, outcome, fence)),
    }, ['missing', 'byDepthRange', 'byStatus'], this.forgetAll);
  }

  private wrapState(store: Store): Store['state'] {
    const state = store.state;
    return withOverrides(state, {
      getForEvent: async (eventId) => {
        const entry = this.event(eventId);
        if (entry?.refs) return { ...entry.refs };
        const writesBefore = this.eventWrites;
        const refs = await state.getForEvent(eventId);
        // Remembered only for an event whose room is known here (its record was), held under the same lease.
        if (refs && entry && !entry.absent && this.eventWrites === writesBefore && this.event(eventId) === entry) entry.refs = { ...refs };
        return refs;
      },
      setForEvent: (eventId, refs, fence) => this.eventWrite([eventId], () => state.setForEvent(eventId, refs, fence)),
    }, ['derive', 'save', 'load', 'stateAfterEvent', 'stateBeforeEvent'], this.forgetAll);
  }

  /** Commits' writes (one or a run in one transaction): each event, its state refs, its room's extremities and current state remembered once written. */
  private async commit(
    all: readonly EventCommitWrites[],
    write: () => Promise<Array<{ inserted: boolean }>>,
  ): Promise<Array<{ inserted: boolean }>> {
    const epochs = new Map<string, number | undefined>();
    for (const { event } of all) {
      const roomId = event.roomId;
      if (!epochs.has(roomId)) epochs.set(roomId, this.holding(roomId));
      this.writes.set(roomId, (this.writes.get(roomId) ?? 0) + 1);
      this.events.delete(event.eventId);
    }
    this.eventWrites++;
    let results: Array<{ inserted: boolean }>;
    try {
      results = await write();
    } catch (err) {
      for (const { event } of all) {
        this.rooms.delete(event.roomId);
        this.events.delete(event.eventId);
      }
      throw err;
    }
    all.forEach((writes, i) => this.remember(writes, results[i]!, epochs.get(writes.event.roomId)));
    return results;
  }

  private remember(writes: EventCommitWrites, result: { inserted: boolean }, epoch: number | undefined): void {
    const { event } = writes;
    const roomId = event.roomId;
    if (epoch === undefined || this.holding(roomId) !== epoch) return;
    // Not inserted: the stored record keeps its first fields (only the outcome was set): read when wanted.
    if (result.inserted) this.rememberEvent(event, epoch);
    else this.events.set(event.eventId, { epoch, roomId, refs: undefined });
    this.events.get(event.eventId)!.refs = { ...writes.stateRefs };
    const entry = this.room(roomId)!;
    // A create event's room record: as the store keeps it (an existing record is left as it was), read when wanted.
    if (writes.room) entry.record = undefined;
    if (writes.forwardExtremities && entry.extremities) entry.extremities = applyChange(entry.extremities, writes.forwardExtremities);
    if (writes.currentStateId !== undefined && entry.record) entry.record = { ...entry.record, currentStateId: writes.currentStateId };
  }
}
