// The state-snapshot logic both adapters share: content-addressed IDs, base + delta chains cut at a
// bounded length, and a cache of loaded states (snapshots never change, so caching is always safe).
// An adapter supplies only row storage (`SnapshotRowStore`).
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RoomWriteFence } from '../ports/pending-commits';
import type { EventStateRefs, StateEntry, StateMap, StateSnapshotRepository } from '../ports/state';
import { stateTupleKey } from '../ports/state';

export interface SnapshotRow {
  id: string;
  roomId: string;
  baseId: string | null;
  /** baseId, its base, …, up to the full snapshot at the root; nearest first. */
  ancestors: string[];
  delta: StateEntry[];
}

export interface SnapshotRowStore {
  /** Stores the row unless its ID is stored (same ID, same content). */
  putRow(row: SnapshotRow): Promise<void>;
  getRows(ids: string[]): Promise<SnapshotRow[]>;
  putEventRefs(eventId: string, refs: EventStateRefs, fence?: RoomWriteFence): Promise<void>;
  getEventRefs(eventId: string): Promise<EventStateRefs | undefined>;
}

/** Longest base chain before a full snapshot is written: bounds the rows read to load a state. */
export const MAX_SNAPSHOT_CHAIN = 16;
const CACHE_ENTRIES = 512;
const ANCESTRY_CACHE_ENTRIES = 8192;

export class SnapshotRepository implements StateSnapshotRepository {
  private readonly cache = new LRUCache<string, StateMap>({ max: CACHE_ENTRIES });
  /** Snapshot ID → its ancestors: lets `derive` skip reading the base row. */
  private readonly ancestry = new LRUCache<string, string[]>({ max: ANCESTRY_CACHE_ENTRIES });

  constructor(private readonly rows: SnapshotRowStore) {}

  async derive(roomId: string, baseId: string | null, delta: StateEntry[]): Promise<string> {
    const normalized = normalizeDelta(delta);
    if (baseId === null) return this.writeFull(roomId, applyDelta(new Map(), normalized));
    if (normalized.length === 0) return baseId;
    const ancestors = [baseId, ...(await this.ancestorsOf(baseId))];
    if (ancestors.length > MAX_SNAPSHOT_CHAIN) {
      const baseState = await this.load(baseId);
      return this.writeFull(roomId, applyDelta(new Map(baseState), normalized));
    }
    const row: SnapshotRow = { id: snapshotId(roomId, baseId, normalized), roomId, baseId, ancestors, delta: normalized };
    await this.rows.putRow(row);
    this.rememberAncestry(row);
    // The next event's state is usually derived from this one: keep it while the base is at hand.
    const baseState = this.cached(baseId);
    if (baseState) this.remember(row.id, applyDelta(new Map(baseState), normalized));
    return row.id;
  }

  async save(roomId: string, state: StateMap, baseId: string | null = null): Promise<string> {
    if (baseId === null) return this.writeFull(roomId, state);
    const base = await this.load(baseId);
    if (!base) throw new Error(`state snapshot ${baseId} not found`);
    return this.derive(roomId, baseId, diffStates(base, state));
  }

  async load(snapshotId: string): Promise<StateMap | undefined> {
    const cached = this.cached(snapshotId);
    if (cached) return cached;
    const [row] = await this.rows.getRows([snapshotId]);
    if (!row) return undefined;
    this.rememberAncestry(row);
    // Read only the part of the chain above the nearest cached ancestor.
    const needed: string[] = [];
    let state: StateMap = new Map();
    for (const id of row.ancestors) {
      const hit = this.cached(id);
      if (hit) {
        state = new Map(hit);
        break;
      }
      needed.push(id);
    }
    const fetched = new Map((await this.rows.getRows(needed)).map((r) => [r.id, r]));
    for (const id of needed.reverse()) {
      const ancestor = fetched.get(id);
      if (!ancestor) throw new Error(`state snapshot ${snapshotId}: ancestor ${id} missing`);
      applyDelta(state, ancestor.delta);
    }
    applyDelta(state, row.delta);
    this.remember(snapshotId, state);
    return state;
  }

  setForEvent(eventId: string, refs: EventStateRefs, fence?: RoomWriteFence): Promise<void> {
    return this.rows.putEventRefs(eventId, refs, fence);
  }

  getForEvent(eventId: string): Promise<EventStateRefs | undefined> {
    return this.rows.getEventRefs(eventId);
  }

  async stateAfterEvent(eventId: string): Promise<StateMap | undefined> {
    const refs = await this.rows.getEventRefs(eventId);
    return refs ? this.load(refs.after) : undefined;
  }

  async stateBeforeEvent(eventId: string): Promise<StateMap | undefined> {
    const refs = await this.rows.getEventRefs(eventId);
    return refs ? this.load(refs.before) : undefined;
  }

  private async ancestorsOf(id: string): Promise<string[]> {
    const known = this.ancestry.get(id);
    if (known) return known;
    const [row] = await this.rows.getRows([id]);
    if (!row) throw new Error(`state snapshot ${id} not found`);
    this.rememberAncestry(row);
    return row.ancestors;
  }

  private rememberAncestry(row: SnapshotRow): void {
    this.ancestry.set(row.id, row.ancestors);
  }

  private async writeFull(roomId: string, state: StateMap): Promise<string> {
    const delta = normalizeDelta([...state].map(([key, eventId]) => ({ ...parseKey(key), eventId })));
    const row: SnapshotRow = { id: snapshotId(roomId, null, delta), roomId, baseId: null, ancestors: [], delta };
    await this.rows.putRow(row);
    this.rememberAncestry(row);
    this.remember(row.id, new Map(state));
    return row.id;
  }

  private cached(id: string): StateMap | undefined {
    return this.cache.get(id);
  }

  private remember(id: string, state: StateMap): void {
    this.cache.set(id, state);
  }
}

function parseKey(key: string): { type: string; stateKey: string } {
  const [type, stateKey] = JSON.parse(key) as [string, string];
  return { type, stateKey };
}

/** Last entry per tuple wins; sorted, so equal deltas hash equally. */
function normalizeDelta(delta: StateEntry[]): StateEntry[] {
  const byKey = new Map<string, StateEntry>();
  for (const e of delta) byKey.set(stateTupleKey(e.type, e.stateKey), { type: e.type, stateKey: e.stateKey, eventId: e.eventId });
  return [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

function applyDelta(state: StateMap, delta: StateEntry[]): StateMap {
  for (const e of delta) {
    const key = stateTupleKey(e.type, e.stateKey);
    if (e.eventId === null) state.delete(key);
    else state.set(key, e.eventId);
  }
  return state;
}

export function diffStates(from: StateMap, to: StateMap): StateEntry[] {
  const delta: StateEntry[] = [];
  for (const [key, eventId] of to) if (from.get(key) !== eventId) delta.push({ ...parseKey(key), eventId });
  for (const key of from.keys()) if (!to.has(key)) delta.push({ ...parseKey(key), eventId: null });
  return delta;
}

function snapshotId(roomId: string, baseId: string | null, delta: StateEntry[]): string {
  const body = JSON.stringify([roomId, baseId, delta.map((e) => [e.type, e.stateKey, e.eventId])]);
  return 'ss_' + createHash('sha256').update(body).digest('base64url');
}
