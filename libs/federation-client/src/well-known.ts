import { LRUCache } from 'lru-cache';
import { parseServerName } from './server-name';

/** The raw answer to `GET https://<hostname>/.well-known/matrix/server`, after redirects. */
export interface WellKnownHttpResponse {
  readonly status: number;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
}

/** Port: fetches the well-known document for a hostname; throws when no answer came back. */
export type WellKnownFetcher = (hostname: string) => Promise<WellKnownHttpResponse>;

export interface WellKnownCacheOptions {
  readonly now?: () => number;
  /** Lifetime when the response has no usable cache headers (spec recommends 24 h). */
  readonly defaultTtlMs?: number;
  /** Upper bound on any success lifetime (spec recommends 48 h). */
  readonly maxTtlMs?: number;
  /** Lower bound on a success lifetime, so `no-store` does not mean a fetch per request. */
  readonly minTtlMs?: number;
  /** First failure is cached this long; each further consecutive failure doubles it. */
  readonly errorInitialTtlMs?: number;
  /** Cap for failure lifetimes (spec recommends up to an hour). */
  readonly errorMaxTtlMs?: number;
  readonly maxEntries?: number;
}

const HOUR = 60 * 60 * 1000;
const MINUTE = 60 * 1000;

interface CacheEntry {
  readonly delegated: string | undefined;
  readonly expiresAt: number;
  readonly consecutiveFailures: number;
}

type Outcome = { ok: true; delegated: string; ttlMs: number } | { ok: false };

/**
 * Caches well-known delegation per hostname, successes by their cache headers and failures
 * (transport error, non-200, bad JSON, missing or malformed `m.server`) with exponential backoff.
 * `lookup` answers the delegated server name, or undefined meaning "fall through to SRV".
 */
export class WellKnownCache {
  private readonly entries: LRUCache<string, CacheEntry>;
  private readonly inFlight = new Map<string, Promise<string | undefined>>();
  private readonly now: () => number;
  private readonly defaultTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly minTtlMs: number;
  private readonly errorInitialTtlMs: number;
  private readonly errorMaxTtlMs: number;

  constructor(private readonly fetchWellKnown: WellKnownFetcher, options: WellKnownCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.defaultTtlMs = options.defaultTtlMs ?? 24 * HOUR;
    this.maxTtlMs = options.maxTtlMs ?? 48 * HOUR;
    this.minTtlMs = options.minTtlMs ?? 5 * MINUTE;
    this.errorInitialTtlMs = options.errorInitialTtlMs ?? 5 * MINUTE;
    this.errorMaxTtlMs = options.errorMaxTtlMs ?? HOUR;
    this.entries = new LRUCache({ max: options.maxEntries ?? 10_000 });
  }

  lookup(hostname: string): Promise<string | undefined> {
    const key = hostname.toLowerCase();
    const cached = this.entries.get(key);
    if (cached && cached.expiresAt > this.now()) return Promise.resolve(cached.delegated);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const fetching = this.refresh(key, hostname, cached).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, fetching);
    return fetching;
  }

  private async refresh(key: string, hostname: string, previous: CacheEntry | undefined): Promise<string | undefined> {
    const outcome = await this.fetchAndParse(hostname);
    const now = this.now();
    let entry: CacheEntry;
    if (outcome.ok) {
      entry = { delegated: outcome.delegated, expiresAt: now + outcome.ttlMs, consecutiveFailures: 0 };
    } else {
      const failures = (previous?.consecutiveFailures ?? 0) + 1;
      const ttl = Math.min(this.errorInitialTtlMs * 2 ** (failures - 1), this.errorMaxTtlMs);
      entry = { delegated: undefined, expiresAt: now + ttl, consecutiveFailures: failures };
    }
    this.entries.set(key, entry);
    return entry.delegated;
  }

  private async fetchAndParse(hostname: string): Promise<Outcome> {
    let response: WellKnownHttpResponse;
    try {
      response = await this.fetchWellKnown(hostname);
    } catch {
      return { ok: false };
    }
    if (response.status !== 200) return { ok: false };
    const delegated = parseWellKnownBody(response.body);
    if (delegated === undefined) return { ok: false };
    return { ok: true, delegated, ttlMs: this.successTtl(response.headers) };
  }

  private successTtl(headers: WellKnownHttpResponse['headers']): number {
    const fromHeaders = cacheLifetimeFromHeaders(headers, this.now());
    const ttl = fromHeaders ?? this.defaultTtlMs;
    return Math.min(Math.max(ttl, this.minTtlMs), this.maxTtlMs);
  }
}

/** The `m.server` value if the body is a JSON object carrying a grammatical one, else undefined. */
export function parseWellKnownBody(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const server = (parsed as Record<string, unknown>)['m.server'];
  if (typeof server !== 'string') return undefined;
  try {
    parseServerName(server);
  } catch {
    return undefined;
  }
  return server;
}

/** Lifetime in ms from Cache-Control (max-age, no-store, no-cache) or Expires; undefined when neither says. */
export function cacheLifetimeFromHeaders(headers: WellKnownHttpResponse['headers'], now: number): number | undefined {
  const cacheControl = headers['cache-control'];
  if (cacheControl) {
    const directives = cacheControl.split(',').map((part) => part.trim().toLowerCase());
    if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
    for (const directive of directives) {
      const match = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive);
      if (match) return Number(match[1]) * 1000;
    }
  }
  const expires = headers['expires'];
  if (expires) {
    const expiresAt = Date.parse(expires);
    // An unparseable Expires (commonly "0" or "-1") means "already expired".
    if (Number.isNaN(expiresAt)) return 0;
    const dateHeader = headers['date'] ? Date.parse(headers['date']) : Number.NaN;
    const reference = Number.isNaN(dateHeader) ? now : dateHeader;
    return Math.max(expiresAt - reference, 0);
  }
  return undefined;
}
