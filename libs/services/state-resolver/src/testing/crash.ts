// A process that dies at a chosen write, for crash-consistency tests: every store write and bus publish (or batch) is
// counted, and from the `dieAt`-th on each one throws (reads go on), as if the process had stopped there.
import type { Bus } from '@fedgate/bus';
import { SequentialCommitWriter, type Store } from '@fedgate/store';

const WRITES: Record<string, string[]> = {
  events: ['append', 'appendMany', 'setOutcome'],
  state: ['save', 'derive', 'setForEvent'],
  rooms: ['ensure', 'setCurrentState', 'updateForwardExtremities', 'setJoinedServers', 'updateJoinedServers'],
  redactions: ['addClaim', 'apply'],
  pendingCommits: ['add', 'remove', 'removeAll'],
  partialStateRooms: ['begin', 'finish'],
  clientTransactions: ['record'],
  commits: ['write', 'writeAll'],
};

export class Crash {
  writes = 0;
  constructor(public dieAt = Infinity) {}

  get died(): boolean {
    return this.writes >= this.dieAt;
  }

  write(): void {
    this.writes++;
    if (this.writes >= this.dieAt) throw new Error(`simulated crash at write ${this.writes}`);
  }

  /**
   * `commitWrites: 'one by one'`: a commit's store writes as a store without transactions makes them (MongoDB), each
   * one a write the process may die at; else as the store given makes them (the embedded store: one transaction).
   */
  store(store: Store, options: { commitWrites?: 'one by one' } = {}): Store {
    const wrapped: Record<string, unknown> = { ...store };
    for (const [repo, methods] of Object.entries(WRITES)) {
      const target = (store as unknown as Record<string, Record<string, (...args: unknown[]) => unknown>>)[repo];
      wrapped[repo] = new Proxy(target, {
        get: (t, key) => {
          const value = t[key as string];
          if (typeof value !== 'function') return value;
          if (!methods.includes(key as string)) return value.bind(t);
          return async (...args: unknown[]) => {
            this.write();
            return value.apply(t, args);
          };
        },
      });
    }
    if (options.commitWrites === 'one by one') wrapped.commits = new SequentialCommitWriter(wrapped as unknown as Store);
    return wrapped as unknown as Store;
  }

  bus(bus: Bus): Bus {
    return new Proxy(bus, {
      get: (t, key) => {
        const value = (t as unknown as Record<string | symbol, unknown>)[key];
        if (typeof value !== 'function') return value;
        if (key !== 'publish' && key !== 'publishBatch') return value.bind(t);
        return async (...args: unknown[]) => {
          this.write();
          return value.apply(t, args);
        };
      },
    });
  }
}

