// For tests of a process dying between the writes of a multi-write store method on MongoDB/FerretDB (no
// multi-document transactions): every collection write is counted, and from the `dieAt`-th on each one throws
// before it reaches the server (reads go on), as if the process had stopped right before that write.
import type { Collection, Document } from 'mongodb';
import type { MongoCollections } from './database';

/** The driver's collection methods that write. */
export const MONGO_WRITE_METHODS: ReadonlySet<string> = new Set([
  'insertOne',
  'insertMany',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndUpdate',
  'findOneAndReplace',
  'findOneAndDelete',
  'bulkWrite',
]);

export class MongoWriteCrash {
  writes = 0;
  /** `collection.method` of every write asked for, the one died at included: names the place a test died at. */
  readonly log: string[] = [];

  private held: { at: number; reached: () => void; gate: Promise<void> } | undefined;

  constructor(public dieAt = Infinity) {}

  /**
   * Holds the `at`-th write (counted from the last `arm`) until `release` is called, as a process paused right
   * before it (a GC, SIGSTOP): `reached` resolves once it is held.
   */
  holdAt(at: number): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.held = { at, reached, gate };
    return { reached: reachedPromise, release };
  }

  /** Counts afresh and dies at the `dieAt`-th write from now (one wrapped store standing for many dying processes). */
  arm(dieAt: number): void {
    this.writes = 0;
    this.held = undefined;
    this.log.length = 0;
    this.dieAt = dieAt;
  }

  get died(): boolean {
    return this.writes >= this.dieAt;
  }

  /** The same collections, each write counted (and refused from `dieAt` on). */
  collections(collections: MongoCollections): MongoCollections {
    const wrapped = {} as Record<string, Collection<Document>>;
    for (const [key, collection] of Object.entries(collections) as Array<[string, Collection<Document>]>) {
      wrapped[key] = new Proxy(collection, {
        get: (target, property) => {
          const value = Reflect.get(target, property) as unknown;
          if (typeof value !== 'function') return value;
          if (!MONGO_WRITE_METHODS.has(property as string)) return (value as (...args: unknown[]) => unknown).bind(target);
          return (...args: unknown[]) => {
            this.writes++;
            this.log.push(`${key}.${String(property)}`);
            if (this.writes >= this.dieAt) return Promise.reject(new Error(`simulated crash before write ${this.writes} (${key}.${String(property)})`));
            const held = this.held;
            if (held?.at === this.writes) {
              this.held = undefined;
              held.reached();
              return held.gate.then(() => (value as (...a: unknown[]) => unknown).apply(target, args));
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    }
    return wrapped as unknown as MongoCollections;
  }
}
