import { LRUCache } from 'lru-cache';
import type { DnsResolver, SrvRecord } from './dns';
import { parseServerName, type ParsedServerName } from './server-name';
import { orderSrvRecords } from './srv-order';

export const DEFAULT_FEDERATION_PORT = 8448;

/** One place to try, in order of preference. */
export interface ResolvedDestination {
  /** Hostname or IP address (no brackets) to look up and connect to. */
  readonly connectHost: string;
  readonly port: number;
  /** Value of the Host header. */
  readonly hostHeader: string;
  /**
   * Name the certificate must be valid for, also sent as SNI. Null when the certificate must be
   * valid for the IP address itself: then no SNI is sent (the spec forbids SNI for IP addresses).
   */
  readonly tlsServerName: string | null;
}

export interface DiscoveryDeps {
  readonly dns: Pick<DnsResolver, 'resolveSrv'>;
  /** Delegated server name from `/.well-known/matrix/server`, or undefined for "no usable answer". */
  readonly wellKnown: { lookup(hostname: string): Promise<string | undefined> };
  /** For the SRV weighted draw; [0, 1). */
  readonly random?: () => number;
}

export type ServerNameResolver = (serverName: string) => Promise<ResolvedDestination[]>;

/** "Resolving server names" (server-server API, Server discovery), step by step. */
export async function resolveServerName(serverName: string, deps: DiscoveryDeps): Promise<ResolvedDestination[]> {
  const name = parseServerName(serverName);

  // Step 1: IP literal.
  if (name.kind !== 'dns') return [ipLiteral(name)];

  // Step 2: hostname with explicit port.
  if (name.port !== undefined) {
    return [{ connectHost: name.host, port: name.port, hostHeader: name.serverName, tlsServerName: name.host }];
  }

  // Step 3: well-known delegation.
  const delegatedName = await deps.wellKnown.lookup(name.host);
  if (delegatedName !== undefined) {
    const delegated = parseServerName(delegatedName);
    if (delegated.kind !== 'dns') return [ipLiteral(delegated)]; // 3.1
    if (delegated.port !== undefined) {
      // 3.2
      return [{ connectHost: delegated.host, port: delegated.port, hostHeader: delegated.serverName, tlsServerName: delegated.host }];
    }
    return viaSrvOrDefaultPort(delegated.host, deps); // 3.3–3.5
  }

  // Steps 4–6: no delegation; SRV on the original hostname, else port 8448.
  return viaSrvOrDefaultPort(name.host, deps);
}

export function createServerNameResolver(deps: DiscoveryDeps): ServerNameResolver {
  return (serverName) => resolveServerName(serverName, deps);
}

function ipLiteral(name: ParsedServerName): ResolvedDestination {
  return { connectHost: name.host, port: name.port ?? DEFAULT_FEDERATION_PORT, hostHeader: name.serverName, tlsServerName: null };
}

/** SRV `_matrix-fed._tcp`, then the deprecated `_matrix._tcp`, then the hostname on 8448. Host and certificate stay `hostname`. */
async function viaSrvOrDefaultPort(hostname: string, deps: DiscoveryDeps): Promise<ResolvedDestination[]> {
  for (const service of ['_matrix-fed._tcp', '_matrix._tcp']) {
    const records = orderSrvRecords(await deps.dns.resolveSrv(`${service}.${hostname}`), deps.random);
    if (records.length > 0) {
      return records.map((record) => ({
        connectHost: record.name.replace(/\.$/, ''),
        port: record.port,
        hostHeader: hostname,
        tlsServerName: hostname,
      }));
    }
  }
  return [{ connectHost: hostname, port: DEFAULT_FEDERATION_PORT, hostHeader: hostname, tlsServerName: hostname }];
}

export interface SrvCacheOptions {
  /** How long a name's SRV answer (records, or none) is used again; default 5 min (the records' own TTLs are not exposed by Node's resolver). */
  readonly ttlMs?: number;
  readonly maxNames?: number;
  readonly now?: () => number;
}

/**
 * SRV answers kept per name, so a destination's every request does not ask DNS for `_matrix-fed._tcp` and
 * `_matrix._tcp` again (issue 19: a fan-out to a thousand servers without well-known delegation did two DNS queries
 * per server per transaction). "No records" is kept too; a failed lookup is not. The records are kept, not their
 * order: the weighted draw among them is made per request.
 */
export function cachedSrvResolver(dns: Pick<DnsResolver, 'resolveSrv'>, options: SrvCacheOptions = {}): Pick<DnsResolver, 'resolveSrv'> {
  const now = options.now;
  const answers = new LRUCache<string, SrvRecord[]>({
    max: options.maxNames ?? 10_000,
    ttl: options.ttlMs ?? 5 * 60_000,
    ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
    // Concurrent requests for one name share one lookup.
    fetchMethod: (name) => dns.resolveSrv(name),
  });
  return { resolveSrv: async (name) => (await answers.fetch(name)) ?? [] };
}
