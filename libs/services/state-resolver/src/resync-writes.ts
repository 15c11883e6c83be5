// The store a partial-state resync run writes through: each write of room data is preceded, with nothing in
// between, by the run's check (not stopped; the lease holding it began under still this replica's, fresh), so a
// run refused or stopped writes nothing more, not even the rest of a step it was in the middle of. The writes that
// change what the room already holds also carry the run's fence to the store, which refuses them itself once a
// newer owner raised the room's fence (a replica paused, or with a slow clock, past the check above).
import { CommitFencedError, type RoomWriteFence, type Store } from '@fedgate/store';

const ROOM_WRITES = {
  events: ['append', 'appendMany', 'setOutcome'],
  state: ['save', 'derive', 'setForEvent'],
  rooms: ['ensure', 'setCurrentState', 'updateForwardExtremities', 'setJoinedServers', 'updateJoinedServers'],
  partialStateRooms: ['begin', 'finish'],
} as const;

/**
 * Where each store-fenced write takes its fence argument. Appends and snapshots are not fenced: they add what is
 * not held yet (verified outliers, content-addressed snapshots) and change nothing a reader sees until a fenced
 * write refers to them. `updateJoinedServers` and `begin` are not written by a resync.
 */
const FENCE_ARGUMENT: Readonly<Record<string, number>> = {
  'events.setOutcome': 2,
  'state.setForEvent': 2,
  'rooms.setCurrentState': 2,
  'rooms.updateForwardExtremities': 2,
  'rooms.setJoinedServers': 2,
  'partialStateRooms.finish': 1,
};

export interface ResyncWriteChecks {
  /** Before each write of room data: throws to refuse it. */
  check(write: string): void;
  /** The fence the store checks, when the run works under a lease holding. */
  fence?: RoomWriteFence;
  /** A write the store refused by its fence: what the run throws instead. */
  refused(error: CommitFencedError, write: string): Error;
}

export function checkedWrites(store: Store, checks: ResyncWriteChecks): Store {
  const checked: Record<string, unknown> = { ...store };
  for (const [name, writes] of Object.entries(ROOM_WRITES)) {
    const repository = store[name as keyof typeof ROOM_WRITES] as object;
    checked[name] = new Proxy(repository, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
        if (!(writes as readonly unknown[]).includes(key)) return method;
        const write = `${name}.${String(key)}`;
        const fenceAt = FENCE_ARGUMENT[write];
        return (...args: unknown[]) => {
          checks.check(write);
          if (fenceAt === undefined || !checks.fence) return method(...args);
          const fenced = [...args];
          fenced[fenceAt] = checks.fence;
          return method(...fenced).catch((error: unknown) => {
            throw error instanceof CommitFencedError ? checks.refused(error, write) : error;
          });
        };
      },
    });
  }
  return checked as unknown as Store;
}
