// A MongoClient that a watchdog replaces when it stops reaching a server that answers fresh connections.
// Why: the long chaos run (issue 12) left one process whose driver never selected the server again after a
// store outage — its topology kept the error of a closed pool connection for minutes, so its monitor had
// stopped updating it — while every other process, and any new client, reached the same server at once.
// The repositories hold collections that look up the current client on every use, so a replacement
// reaches them all; operations under way on the old client end with its close, and their callers retry.
import { MongoClient, type Collection, type Db, type Document, type MongoClientOptions } from 'mongodb';

export interface MongoWatchdogOptions {
  /** Time between pings of the current client. */
  checkEveryMs: number;
  /** A ping (server selection included) not answered within this counts as failed; a fresh client gets as long. */
  pingTimeoutMs: number;
  /** Consecutive failed pings before a fresh client is tried. */
  failuresBeforeReplacing: number;
  /** How long a replaced client stays open for operations already under way on it. */
  replacedClientGraceMs: number;
}

export const DEFAULT_MONGO_WATCHDOG: MongoWatchdogOptions = {
  checkEveryMs: 5_000,
  pingTimeoutMs: 10_000,
  failuresBeforeReplacing: 3,
  replacedClientGraceMs: 30_000,
};

export interface MongoClientReplacement {
  /** The last failed ping's error on the replaced client. */
  reason: string;
  failedPings: number;
}

export const CLIENT_OPTIONS: MongoClientOptions = { ignoreUndefined: true };

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** Resolves with the error of `attempt`, or of its not settling within `timeoutMs`; undefined when it succeeded in time. */
async function failureWithin(timeoutMs: number, attempt: () => Promise<unknown>): Promise<Error | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const outcome = attempt().then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  try {
    return await Promise.race([outcome, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

const ping = (client: MongoClient) => client.db('admin').command({ ping: 1 });

export class ReplaceableMongoClient {
  private client: MongoClient;
  private readonly collections = new Map<string, Collection<Document>>();
  private readonly retired = new Set<MongoClient>();
  private closed = false;
  private wake?: () => void;

  private constructor(
    private readonly url: string,
    private readonly dbName: string,
    client: MongoClient,
    private readonly watchdog: MongoWatchdogOptions,
    private readonly onReplaced: (replacement: MongoClientReplacement) => void,
  ) {
    this.client = client;
    void this.watch();
  }

  static async connect(
    url: string,
    dbName: string,
    watchdog: MongoWatchdogOptions = DEFAULT_MONGO_WATCHDOG,
    onReplaced: (replacement: MongoClientReplacement) => void = () => undefined,
  ): Promise<ReplaceableMongoClient> {
    const client = new MongoClient(url, CLIENT_OPTIONS);
    await client.connect();
    return new ReplaceableMongoClient(url, dbName, client, watchdog, onReplaced);
  }

  /** The current client (replaced by the watchdog: hold it only for one operation). */
  get current(): MongoClient {
    return this.client;
  }

  get db(): Db {
    return this.client.db(this.dbName);
  }

  /** A collection whose every use goes to the current client's collection of that name. */
  collection(name: string): Collection<Document> {
    return new Proxy({} as Collection<Document>, {
      get: (_target, property) => {
        const collection = this.currentCollection(name);
        const value = Reflect.get(collection, property, collection) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(collection) : value;
      },
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const clients = [this.client, ...this.retired];
    this.retired.clear();
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  }

  private currentCollection(name: string): Collection<Document> {
    let collection = this.collections.get(name);
    if (!collection) {
      collection = this.client.db(this.dbName).collection(name);
      this.collections.set(name, collection);
    }
    return collection;
  }

  private async watch(): Promise<void> {
    let failures = 0;
    let lastError: Error | undefined;
    while (!this.closed) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void sleep(this.watchdog.checkEveryMs).then(resolve);
      });
      if (this.closed) return;
      const error = await failureWithin(this.watchdog.pingTimeoutMs, () => ping(this.client));
      if (!error) {
        failures = 0;
        continue;
      }
      failures++;
      lastError = error;
      if (failures < this.watchdog.failuresBeforeReplacing) continue;
      // The server may simply be down: then a fresh client fails too, and the current one is kept (the
      // driver reconnects by itself once the server is back).
      const fresh = new MongoClient(this.url, CLIENT_OPTIONS);
      const freshError = await failureWithin(this.watchdog.pingTimeoutMs, async () => {
        await fresh.connect();
        await ping(fresh);
      });
      if (freshError || this.closed) {
        await fresh.close().catch(() => undefined);
        continue;
      }
      this.replaceWith(fresh, { reason: lastError.message, failedPings: failures });
      failures = 0;
    }
  }

  private replaceWith(fresh: MongoClient, replacement: MongoClientReplacement): void {
    const old = this.client;
    this.client = fresh;
    this.collections.clear();
    this.retired.add(old);
    void sleep(this.watchdog.replacedClientGraceMs).then(async () => {
      if (!this.retired.delete(old)) return;
      await old.close().catch(() => undefined);
    });
    this.onReplaced(replacement);
  }
}
