// The store a partial-state resync run writes through: each write of room data is preceded, with nothing in
// between, by the run's check (not stopped; the lease holding it began under still this replica's, fresh), so a
// run refused or stopped writes nothing more, not even the rest of a step it was in the middle of.
import type { Store } from '@fedgate/store';

const ROOM_WRITES = {
  events: ['append', 'appendMany', 'setOutcome'],
  state: ['save', 'derive', 'setForEvent'],
  rooms: ['ensure', 'setCurrentState', 'updateForwardExtremities', 'setJoinedServers', 'updateJoinedServers'],
  partialStateRooms: ['begin', 'finish'],
} as const;

export function checkedWrites(store: Store, check: (write: string) => void): Store {
  const checked: Record<string, unknown> = { ...store };
  for (const [name, writes] of Object.entries(ROOM_WRITES)) {
    const repository = store[name as keyof typeof ROOM_WRITES] as object;
    checked[name] = new Proxy(repository, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => unknown).bind(target);
        if (!(writes as readonly unknown[]).includes(key)) return method;
        return (...args: unknown[]) => {
          check(`${name}.${String(key)}`);
          return method(...args);
        };
      },
    });
  }
  return checked as unknown as Store;
}
