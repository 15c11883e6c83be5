// KeyRing backed by the store's remote-key cache: keys are read from `store.serverKeys`, fetched from the
// server itself (or through notaries) on a miss, verified, then written back for every replica to use.
import {
  SignatureVerificationError,
  VerifyKey,
  verifyJsonSignature,
  verifyServerKeyDocument,
  type ServerKeys,
  type SigningKey,
  type VerifyKeyLookup,
} from '@fedgate/protocol';
import type { RemoteServerKey, ServerKeyRepository } from '@fedgate/store';
import type { KeyQueryRequest } from '../federation-http-client';
import type { KeyRing, KeyRingCaller, ServerKeyRequest } from '../key-ring';
import { LRUCache } from 'lru-cache';
import { DEFAULT_KEY_FETCH_LIMITS, KeyFetchBudget, type FetchRefusal, type KeyFetchLimits } from './fetch-budget';

/** The part of FederationHttpClient the key ring calls. */
export interface KeyFetcher {
  fetchServerKeys(serverName: string): Promise<Record<string, unknown>>;
  queryKeysViaNotary(notary: string, query: KeyQueryRequest): Promise<Record<string, unknown>>;
}

export interface NotaryConfig {
  serverName: string;
  /** Pinned keys (key ID → unpadded base64), as operators configure trusted key servers; otherwise fetched from the notary. */
  verifyKeys?: Record<string, string>;
}

export interface StoreKeyRingOptions {
  serverKeys: Pick<ServerKeyRepository, 'putRemote' | 'listRemote'>;
  fetcher: KeyFetcher;
  /** This server: its keys are answered without a request. */
  ownServerName: string;
  ownKeys: () => readonly SigningKey[];
  notaries?: readonly NotaryConfig[];
  /** After a fetch that found nothing usable, do not ask again for this long (default 60 s). */
  negativeCacheMs?: number;
  /** How long keys read from the store are reused from memory before re-reading (default 30 s). */
  memoryCacheMs?: number;
  now?: () => number;
  /** Told why a fetch failed (for logs); the failure itself shows up as an unknown key to the verifier. */
  onFetchFailure?: (serverName: string, source: string, error: unknown) => void;
  /** Servers whose keys, documents and failures are held in memory (least recently used forgotten first; default 10,000). */
  maxCachedServers?: number;
  /** Fetches that requests from the internet (callers naming a client address) may cause. */
  fetchLimits?: KeyFetchLimits;
  /** Told of every fetch the budget refused (for logs and metrics). */
  onFetchRefused?: (serverName: string, clientAddress: string, reason: FetchRefusal) => void;
}

export interface KeyRingStats {
  cachedServers: number;
  documents: number;
  negative: number;
  inFlight: number;
  trackedAddresses: number;
}

const MAX_NEGATIVE_KEY_SETS_PER_SERVER = 16;

interface CachedServer {
  keys: Map<string, RemoteServerKey>;
  loadedAt: number;
  /**
   * The keys decoded, made at the first lookup after this load and kept with it (issue 19: every `prepare`, two per
   * `/send`, decoded every key again, and each VerifyKey built its KeyObject anew). A load replaces the whole entry.
   */
  verifyKeys?: Map<string, VerifyKey>;
}

interface Wanted {
  keyIds: string[] | undefined;
  minimumValidUntilTs: number;
}

export class StoreKeyRing implements KeyRing {
  private readonly memory: LRUCache<string, CachedServer>;
  /** One entry per fetch running; their number is bounded by the fetch budget and the fetch timeouts. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** server → (wanted key set) → do not fetch again before. */
  private readonly negative: LRUCache<string, Map<string, number>>;
  /** The last verified raw document per server, for answering notary queries with the origin's own signature. */
  private readonly documents: LRUCache<string, { document: Record<string, unknown>; validUntilTs: number }>;
  private readonly budget: KeyFetchBudget;
  private readonly now: () => number;
  private readonly negativeCacheMs: number;
  private readonly memoryCacheMs: number;

  constructor(private readonly options: StoreKeyRingOptions) {
    this.now = options.now ?? Date.now;
    this.negativeCacheMs = options.negativeCacheMs ?? 60_000;
    this.memoryCacheMs = options.memoryCacheMs ?? 30_000;
    const maxServers = options.maxCachedServers ?? 10_000;
    this.memory = new LRUCache({ max: maxServers });
    this.negative = new LRUCache({ max: maxServers });
    this.documents = new LRUCache({ max: maxServers });
    this.budget = new KeyFetchBudget(options.fetchLimits ?? DEFAULT_KEY_FETCH_LIMITS, this.now);
  }

  stats(): KeyRingStats {
    return {
      cachedServers: this.memory.size,
      documents: this.documents.size,
      negative: this.negative.size,
      inFlight: this.inFlight.size,
      trackedAddresses: this.budget.trackedAddresses,
    };
  }

  async prepare(requests: ServerKeyRequest[], caller?: KeyRingCaller): Promise<VerifyKeyLookup> {
    const now = this.now();
    const byServer = new Map<string, Wanted[]>();
    for (const request of requests) {
      if (request.serverName === this.options.ownServerName) continue;
      const list = byServer.get(request.serverName) ?? [];
      list.push({ keyIds: request.keyIds, minimumValidUntilTs: request.minimumValidUntilTs ?? now });
      byServer.set(request.serverName, list);
    }
    await Promise.all([...byServer].map(([server, wanted]) => this.ensure(server, wanted, caller)));
    const snapshot = new Map<string, Map<string, VerifyKey>>();
    for (const server of byServer.keys()) {
      const cached = this.memory.get(server);
      snapshot.set(server, cached ? (cached.verifyKeys ??= toVerifyKeys(cached.keys)) : new Map());
    }
    const own = new Map(this.options.ownKeys().map((k) => [k.keyId, k.verifyKey()]));
    return (serverName, keyId) => (serverName === this.options.ownServerName ? own.get(keyId) : snapshot.get(serverName)?.get(keyId));
  }

  /**
   * Verified key documents for `serverName` as last fetched (with the origin's signatures), fetching when none is
   * held or it expires before `minimumValidUntilTs`. For the notary endpoint.
   */
  async serverKeyDocuments(serverName: string, minimumValidUntilTs?: number, caller?: KeyRingCaller): Promise<Record<string, unknown>[]> {
    const minimum = minimumValidUntilTs ?? this.now();
    const held = this.documents.get(serverName);
    if (held && held.validUntilTs >= minimum) return [held.document];
    const wanted: Wanted = { keyIds: undefined, minimumValidUntilTs: minimum };
    if ((this.negative.get(serverName)?.get(wantedKey(wanted)) ?? 0) > this.now()) return [];
    if (!this.mayFetch(serverName, caller)) return [];
    await this.fetch(serverName, wanted);
    if (!this.documents.get(serverName)) this.rememberFailure(serverName, wanted);
    const fetched = this.documents.get(serverName);
    return fetched ? [fetched.document] : [];
  }

  /** Whether the caller's budget allows a fetch for `serverName` (joining a running fetch costs nothing). */
  private mayFetch(serverName: string, caller: KeyRingCaller | undefined): boolean {
    if (caller?.clientAddress === undefined || this.inFlight.has(serverName)) return true;
    const refusal = this.budget.take(caller.clientAddress);
    if (refusal === undefined) return true;
    this.options.onFetchRefused?.(serverName, caller.clientAddress, refusal);
    return false;
  }

  private async ensure(serverName: string, wanted: Wanted[], caller: KeyRingCaller | undefined): Promise<void> {
    await this.load(serverName, false);
    if (wanted.every((w) => satisfied(this.memory.get(serverName), w))) return;
    // Another replica may have fetched since we last read the store.
    await this.load(serverName, true);
    const missing = wanted.filter((w) => !satisfied(this.memory.get(serverName), w));
    if (missing.length === 0) return;
    const negative = this.negative.get(serverName);
    const now = this.now();
    const toFetch = missing.filter((w) => (negative?.get(wantedKey(w)) ?? 0) <= now);
    if (toFetch.length === 0) return;
    if (!this.mayFetch(serverName, caller)) return;
    const merged: Wanted = {
      keyIds: toFetch.some((w) => w.keyIds === undefined) ? undefined : [...new Set(toFetch.flatMap((w) => w.keyIds ?? []))],
      minimumValidUntilTs: Math.max(...toFetch.map((w) => w.minimumValidUntilTs)),
    };
    await this.fetch(serverName, merged);
    for (const w of toFetch) {
      if (satisfied(this.memory.get(serverName), w)) negative?.delete(wantedKey(w));
      else this.rememberFailure(serverName, w);
    }
  }

  private rememberFailure(serverName: string, wanted: Wanted): void {
    let map = this.negative.get(serverName);
    if (!map) this.negative.set(serverName, (map = new Map()));
    // Key IDs come from request headers: remember a few key sets per server, not any number.
    if (map.size >= MAX_NEGATIVE_KEY_SETS_PER_SERVER) map.delete(map.keys().next().value as string);
    map.set(wantedKey(wanted), this.now() + this.negativeCacheMs);
  }

  private async load(serverName: string, force: boolean): Promise<void> {
    const cached = this.memory.get(serverName);
    if (!force && cached && this.now() - cached.loadedAt < this.memoryCacheMs) return;
    const rows = await this.options.serverKeys.listRemote(serverName);
    this.memory.set(serverName, { keys: new Map(rows.map((r) => [r.keyId, r])), loadedAt: this.now() });
  }

  /** One fetch per server at a time: concurrent lookups share it. */
  private fetch(serverName: string, wanted: Wanted): Promise<void> {
    const running = this.inFlight.get(serverName);
    if (running) return running;
    const work = this.fetchUncoordinated(serverName, wanted).finally(() => this.inFlight.delete(serverName));
    this.inFlight.set(serverName, work);
    return work;
  }

  private async fetchUncoordinated(serverName: string, wanted: Wanted): Promise<void> {
    try {
      const document = await this.options.fetcher.fetchServerKeys(serverName);
      await this.accept(serverName, document, 'direct');
    } catch (error) {
      this.options.onFetchFailure?.(serverName, 'direct', error);
    }
    if (satisfied(this.memory.get(serverName), wanted)) return;
    for (const notary of this.options.notaries ?? []) {
      try {
        await this.queryNotary(notary, serverName, wanted);
      } catch (error) {
        this.options.onFetchFailure?.(serverName, `notary ${notary.serverName}`, error);
      }
      if (satisfied(this.memory.get(serverName), wanted)) return;
    }
  }

  private async queryNotary(notary: NotaryConfig, serverName: string, wanted: Wanted): Promise<void> {
    const criteria: Record<string, { minimum_valid_until_ts?: number }> = {};
    for (const keyId of wanted.keyIds ?? []) criteria[keyId] = { minimum_valid_until_ts: wanted.minimumValidUntilTs };
    const response = await this.options.fetcher.queryKeysViaNotary(notary.serverName, { server_keys: { [serverName]: criteria } });
    const documents = response.server_keys;
    if (!Array.isArray(documents)) throw new Error(`notary ${notary.serverName} answered without a server_keys list`);
    const notaryLookup = await this.notaryKeys(notary);
    for (const document of documents) {
      if (document === null || typeof document !== 'object' || (document as { server_name?: unknown }).server_name !== serverName) continue;
      try {
        verifyJsonSignature(document as Record<string, unknown>, notary.serverName, notaryLookup);
      } catch (error) {
        if (error instanceof SignatureVerificationError) {
          this.options.onFetchFailure?.(serverName, `notary ${notary.serverName}`, error);
          continue;
        }
        throw error;
      }
      await this.accept(serverName, document as Record<string, unknown>, `notary ${notary.serverName}`);
    }
  }

  private async notaryKeys(notary: NotaryConfig): Promise<VerifyKeyLookup> {
    if (notary.verifyKeys) {
      const pinned = new Map(Object.entries(notary.verifyKeys).map(([keyId, key]) => [keyId, VerifyKey.fromBase64(keyId, key)]));
      return (server, keyId) => (server === notary.serverName ? pinned.get(keyId) : undefined);
    }
    return this.prepare([{ serverName: notary.serverName }]);
  }

  /** Verifies the origin's self-signature and the name, then caches the keys in the store and memory. */
  private async accept(serverName: string, document: Record<string, unknown>, source: string): Promise<void> {
    const fetchedTs = this.now();
    let keys: ServerKeys;
    try {
      keys = verifyServerKeyDocument(document, { serverName, fetchedAtTs: fetchedTs });
    } catch (error) {
      this.options.onFetchFailure?.(serverName, source, error);
      return;
    }
    const rows: RemoteServerKey[] = [];
    for (const [keyId, key] of keys.verifyKeys) {
      rows.push({ serverName, keyId, publicKey: key.publicKeyBase64, validUntilTs: keys.validUntilTs, expiredTs: null, fetchedTs });
    }
    for (const [keyId, key] of keys.oldVerifyKeys) {
      if (keys.verifyKeys.has(keyId)) continue;
      rows.push({ serverName, keyId, publicKey: key.publicKeyBase64, validUntilTs: key.expiredTs ?? 0, expiredTs: key.expiredTs ?? 0, fetchedTs });
    }
    await this.options.serverKeys.putRemote(rows);
    const held = this.documents.get(serverName);
    if (!held || held.validUntilTs <= keys.validUntilTs) this.documents.set(serverName, { document, validUntilTs: keys.validUntilTs });
    await this.load(serverName, true);
  }
}

/** Negative results are remembered per key set, whatever time they were wanted for. */
function wantedKey(wanted: Wanted): string {
  return wanted.keyIds ? [...wanted.keyIds].sort().join(',') : '*';
}

/** Whether the cached keys cover the request: each named key usable at the time, or any current key when none is named. */
function satisfied(cached: CachedServer | undefined, wanted: Wanted): boolean {
  if (!cached) return false;
  const usable = (key: RemoteServerKey | undefined) =>
    key !== undefined && (key.expiredTs === null ? key.validUntilTs >= wanted.minimumValidUntilTs : key.expiredTs > wanted.minimumValidUntilTs);
  if (wanted.keyIds === undefined) return [...cached.keys.values()].some((k) => k.expiredTs === null && usable(k));
  return wanted.keyIds.every((keyId) => usable(cached.keys.get(keyId)));
}

function toVerifyKeys(keys: Map<string, RemoteServerKey>): Map<string, VerifyKey> {
  const result = new Map<string, VerifyKey>();
  for (const [keyId, row] of keys) {
    try {
      const validity = row.expiredTs === null ? { validUntilTs: row.validUntilTs } : { expiredTs: row.expiredTs };
      result.set(keyId, VerifyKey.fromBase64(keyId, row.publicKey, validity));
    } catch {
      // A malformed cached key is as good as none: the verifier reports the key as unknown.
    }
  }
  return result;
}
