import { isIP } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { buildConnector, Pool } from 'undici';
import { startPhaseSpan } from '@fedgate/telemetry';
import type { AddressPolicy } from './address-policy';
import type { ResolvedDestination } from './discovery';
import type { DnsResolver, ResolvedAddress } from './dns';
import { FederationClientError } from './errors';
import { hostForUrl } from './server-name';
import { classifyTransportError } from './transport-errors';

export interface RawRequest {
  readonly method: string;
  /** Path and query string. */
  readonly uri: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface HttpsTransportOptions {
  readonly dns: Pick<DnsResolver, 'lookup'>;
  readonly addressPolicy: AddressPolicy;
  /** Trusted CAs; replaces the system store when given. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  readonly connectTimeoutMs: number;
  readonly connectionsPerAddress: number;
  /** An idle connection is closed after this long, whatever keep-alive the peer announces (each open TLS connection holds ~50–100 KiB of native memory). */
  readonly keepAliveTimeoutMs: number;
  readonly maxPools: number;
  /** How long a name's looked-up addresses are used again (default 60 s); forgotten at once when connecting to them fails. */
  readonly addressTtlMs?: number;
  /** How long a destination's TLS session is offered again for resumption (default 1 h; the peer may refuse it, then it is a full handshake). */
  readonly tlsSessionTtlMs?: number;
}

/**
 * Sends one HTTPS request to the first reachable address of a list of resolved destinations.
 * Names are looked up here, each address is checked against the policy, and the socket goes
 * to that very address (no second lookup), with the destination's SNI and Host header.
 * Only failures before the request left (connect, TLS) move on to the next address.
 */
export class HttpsTransport {
  /** The least recently used pool beyond `maxPools` is closed. */
  private readonly pools: LRUCache<string, Pool>;
  private readonly connectFailures = new WeakSet<object>();
  /** Per pool, its sockets still connecting (TCP or TLS handshake), so a request's deadline can end them. */
  private readonly connecting = new WeakMap<Pool, Set<{ destroy(error?: Error): void }>>();

  /** Addresses per name: a lookup per request cost the main thread and queued on libuv's four threads (issue 19). */
  private readonly addresses: LRUCache<string, ResolvedAddress[]>;
  /** Built once: per connection it parsed the configured CA again (issue 19: a cold fan-out connects to every destination). */
  private readonly secureContext: SecureContext;
  /**
   * The last TLS session per pool (address, port, server name), offered on the next connection: resumed, neither side
   * signs or verifies a certificate again. Held here because undici's own session cache keeps them through WeakRefs, so
   * any garbage collection between two connections to a destination lost its session (issue 19: a cold fan-out paid a
   * full handshake per destination). Bounded like the pools; a session is never offered to another name or address.
   */
  private readonly tlsSessions: LRUCache<string, Buffer>;

  constructor(private readonly options: HttpsTransportOptions) {
    this.secureContext = createSecureContext(options.ca ? { ca: options.ca as string | Buffer | Array<string | Buffer> } : {});
    this.addresses = new LRUCache({ max: options.maxPools, ttl: options.addressTtlMs ?? 60_000 });
    this.tlsSessions = new LRUCache({ max: options.maxPools, ttl: options.tlsSessionTtlMs ?? 3_600_000 });
    this.pools = new LRUCache({
      max: options.maxPools,
      dispose: (pool, _key, reason) => {
        if (reason === 'evict') void pool.close().catch(() => undefined);
      },
    });
  }

  async send(targets: readonly ResolvedDestination[], request: RawRequest): Promise<RawResponse> {
    const deadline = AbortSignal.timeout(request.timeoutMs);
    let lastFailure: FederationClientError | undefined;
    let refusal: FederationClientError | undefined;

    for (const target of targets) {
      let addresses: ResolvedAddress[];
      try {
        addresses = await this.addressesOf(target.connectHost);
      } catch (error) {
        lastFailure = classifyTransportError(error, `looking up ${target.connectHost}`, false);
        continue;
      }
      if (addresses.length === 0) {
        lastFailure = new FederationClientError('UNREACHABLE', `${target.connectHost} has no addresses`);
      }
      for (const { address } of addresses) {
        if (!this.options.addressPolicy.isAllowed(address, target.connectHost)) {
          refusal = new FederationClientError(
            'ADDRESS_REFUSED',
            `refusing to connect to ${address} (${target.connectHost}): address is not public and not allowlisted`,
          );
          continue;
        }
        if (deadline.aborted) throw new FederationClientError('TIMEOUT', `request to ${target.hostHeader} timed out`);
        try {
          return await this.sendToAddress(address, target, request, deadline);
        } catch (error) {
          const failure = classifyTransportError(error, `${target.hostHeader} at ${hostForUrl(address)}:${target.port}`, deadline.aborted);
          if (!this.connectFailures.has(error as object)) throw failure;
          this.addresses.delete(target.connectHost);
          lastFailure = failure;
        }
      }
    }
    throw lastFailure ?? refusal ?? new FederationClientError('UNREACHABLE', 'no destination to connect to');
  }

  /** Destinations (address, port, name) with a connection pool: open connections, or requests under way. */
  get poolCount(): number {
    return this.pools.size;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear(); // 'delete' disposals: closed here, once
    await Promise.all(pools.map((pool) => pool.close()));
  }

  private async addressesOf(host: string): Promise<ResolvedAddress[]> {
    const family = isIP(host);
    if (family !== 0) return [{ address: host, family: family === 6 ? 6 : 4 }];
    const known = this.addresses.get(host);
    if (known) return known;
    const looked = await this.options.dns.lookup(host);
    if (looked.length > 0) this.addresses.set(host, looked);
    return looked;
  }

  private async sendToAddress(address: string, target: ResolvedDestination, request: RawRequest, signal: AbortSignal): Promise<RawResponse> {
    const pool = this.poolFor(address, target.port, target.tlsServerName);
    const response = await this.withinDeadline(
      pool,
      pool.request({
        method: request.method as 'GET',
        path: request.uri,
        headers: { ...request.headers, host: target.hostHeader },
        body: request.body,
        signal,
      }),
      signal,
      `request to ${target.hostHeader} at ${hostForUrl(address)}:${target.port} timed out`,
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > request.maxResponseBytes) {
      discard(response.body);
      throw tooLarge(target, request.maxResponseBytes);
    }
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of response.body) {
      received += (chunk as Buffer).length;
      if (received > request.maxResponseBytes) {
        discard(response.body);
        throw tooLarge(target, request.maxResponseBytes);
      }
      chunks.push(chunk as Buffer);
    }
    return { status: response.statusCode, headers, body: Buffer.concat(chunks) };
  }

  /**
   * undici honours the abort signal only once the request is on a connected socket: while connecting and
   * during the TLS handshake only the connect timeout applies. So the deadline is raced here, and a pool with
   * no connected socket has its connecting ones ended (every request queued on them waits on that peer).
   */
  private async withinDeadline<T>(pool: Pool, pending: Promise<T>, signal: AbortSignal, message: string): Promise<T> {
    pending.catch(() => undefined);
    if (signal.aborted) throw new FederationClientError('TIMEOUT', message);
    let onAbort!: () => void;
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => {
        const error = new FederationClientError('TIMEOUT', message);
        if (pool.stats.connected === 0) for (const socket of this.connecting.get(pool) ?? []) socket.destroy(error);
        reject(error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([pending, timedOut]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private poolFor(address: string, port: number, tlsServerName: string | null): Pool {
    const key = `${address}|${port}|${tlsServerName ?? ''}`;
    const existing = this.pools.get(key);
    if (existing) return existing;
    const connecting = new Set<{ destroy(error?: Error): void }>();
    const pool = new Pool(`https://${hostForUrl(address)}:${port}`, {
      connections: this.options.connectionsPerAddress,
      keepAliveTimeout: this.options.keepAliveTimeoutMs,
      // A peer announcing a longer keep-alive (`Keep-Alive: timeout=…`) does not keep our socket and its memory longer.
      keepAliveMaxTimeout: this.options.keepAliveTimeoutMs,
      // SNI and certificate name come from discovery, never from the Host header; null means
      // "certificate for the IP address, no SNI".
      connect: (connectOptions, callback) => {
        // A new connection (TCP and TLS handshakes) shows in the request's trace; a reused one does not.
        const span = startPhaseSpan('connect', { 'server.address': tlsServerName ?? address, 'server.port': port });
        // Built per connection: undici takes the session to offer only when the connector is built.
        const connect = buildConnector({
          secureContext: this.secureContext,
          rejectUnauthorized: true,
          timeout: this.options.connectTimeoutMs,
          maxCachedSessions: 0,
          session: this.tlsSessions.get(key),
        });
        // undici's connector returns the socket it is connecting (its types say void).
        const attempt = (connect as unknown as (o: typeof connectOptions, cb: (e: Error | null, s: unknown) => void) => { destroy(error?: Error): void } | undefined)(
          { ...connectOptions, servername: tlsServerName ?? undefined },
          (error, socket) => {
            span.end(error);
            if (attempt) connecting.delete(attempt);
            if (error) {
              this.connectFailures.add(error);
              this.tlsSessions.delete(key);
            }
            (callback as (e: Error | null, s: unknown) => void)(error, socket);
          },
        );
        if (attempt) {
          connecting.add(attempt);
          (attempt as unknown as TLSSocket).on('session', (session: Buffer) => this.tlsSessions.set(key, session));
        }
      },
    });
    // A pool whose last connection closed with nothing queued is let go (its request queue alone is ~16 KiB; a room of a
    // thousand servers kept a thousand of them): the next request makes a new one, resuming the TLS session.
    pool.on('disconnect', () => {
      if (pool.stats.connected > 0 || pool.stats.size > 0 || this.pools.peek(key) !== pool) return;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    });
    this.connecting.set(pool, connecting);
    this.pools.set(key, pool);
    return pool;
  }
}

/** Abandons a body we will not read; the connection is dropped rather than drained. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function tooLarge(target: ResolvedDestination, limit: number): FederationClientError {
  return new FederationClientError('RESPONSE_TOO_LARGE', `${target.hostHeader} sent more than ${limit} bytes`);
}
