import { isIP } from 'node:net';
import { withHttpClientSpan } from '@fedgate/telemetry';
import { AddressPolicy, type AddressPolicyConfig } from './address-policy';
import { cachedSrvResolver, createServerNameResolver, type ResolvedDestination, type ServerNameResolver, type SrvCacheOptions } from './discovery';
import { systemDnsResolver, type DnsResolver } from './dns';
import { FederationClientError, FederationHttpError } from './errors';
import { HttpsTransport, type RawResponse } from './https-transport';
import type { RequestSigner } from './request-signer';
import { WellKnownCache, type WellKnownCacheOptions, type WellKnownHttpResponse } from './well-known';

export interface FederationHttpClientOptions {
  /** Defaults to the operating system's resolver. */
  readonly dns?: DnsResolver;
  /** Replaces discovery entirely (tests, fixed routing); default is the spec's server-name resolution. */
  readonly resolveServerName?: ServerNameResolver;
  readonly wellKnownCache?: WellKnownCacheOptions;
  readonly srvCache?: SrvCacheOptions;
  /** Loopback/private/link-local destinations are refused unless allowlisted here. */
  readonly addressPolicy?: AddressPolicyConfig;
  /** Trusted CA certificates (PEM); when set they replace the system store. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Produces the `Authorization` header for signed requests; without it requests go unsigned. */
  readonly signRequest?: RequestSigner;
  readonly connectTimeoutMs?: number;
  /** Whole request: every connect attempt, headers and body. */
  readonly requestTimeoutMs?: number;
  readonly maxResponseBytes?: number;
  readonly wellKnownTimeoutMs?: number;
  readonly wellKnownMaxBytes?: number;
  readonly maxWellKnownRedirects?: number;
  /** Port for `https://<hostname>/.well-known/matrix/server`; only tests change the default 443. */
  readonly wellKnownPort?: number;
  readonly connectionsPerAddress?: number;
  readonly keepAliveTimeoutMs?: number;
  readonly maxPools?: number;
  readonly userAgent?: string;
  /** For the SRV weighted draw. */
  readonly random?: () => number;
}

export type QueryValue = string | number | boolean | ReadonlyArray<string | number | boolean> | undefined;

export interface RequestOptions {
  readonly query?: Readonly<Record<string, QueryValue>>;
  /** Sign with the injected signer (default true). Key endpoints are unauthenticated. */
  readonly signed?: boolean;
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
}

export interface FederationRequest extends RequestOptions {
  /** Server name, before delegation. */
  readonly destination: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Already percent-encoded path, starting with `/_matrix/`. */
  readonly path: string;
  /** JSON body; PUT and POST send `{}` when absent, as the spec requires an object. */
  readonly body?: unknown;
}

/** A response as received: lower-case header names, the body's bytes. */
export type BytesResponse = RawResponse;

export interface FederationResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** Body of `POST /_matrix/key/v2/query`. */
export interface KeyQueryRequest {
  readonly server_keys: Record<string, Record<string, { minimum_valid_until_ts?: number }>>;
}

/**
 * Outbound federation over HTTPS: discovery, address policy, TLS verified against the system
 * store or the configured CA, per-address connection pools, JSON in and out. Non-2xx answers
 * throw FederationHttpError; other failures throw FederationClientError with a code.
 */
export class FederationHttpClient {
  private readonly transport: HttpsTransport;
  private readonly resolve: ServerNameResolver;
  private readonly requestTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly wellKnownTimeoutMs: number;
  private readonly wellKnownMaxBytes: number;
  private readonly maxWellKnownRedirects: number;
  private readonly userAgent: string;

  constructor(private readonly options: FederationHttpClientOptions = {}) {
    const dns = options.dns ?? systemDnsResolver;
    this.transport = new HttpsTransport({
      dns,
      addressPolicy: new AddressPolicy(options.addressPolicy),
      ca: options.ca,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      connectionsPerAddress: options.connectionsPerAddress ?? 8,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 60_000,
      maxPools: options.maxPools ?? 1_000,
    });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 10 * 1024 * 1024;
    this.wellKnownTimeoutMs = options.wellKnownTimeoutMs ?? 10_000;
    this.wellKnownMaxBytes = options.wellKnownMaxBytes ?? 64 * 1024;
    this.maxWellKnownRedirects = options.maxWellKnownRedirects ?? 5;
    this.userAgent = options.userAgent ?? 'fedgate';
    this.resolve =
      options.resolveServerName ??
      createServerNameResolver({
        dns: cachedSrvResolver(dns, options.srvCache),
        wellKnown: new WellKnownCache((hostname) => this.fetchWellKnown(hostname), options.wellKnownCache),
        random: options.random,
      });
  }

  /** A client span per request: its destination, status and route (never the remote's trace: no traceparent is sent). */
  async request<T = unknown>(request: FederationRequest): Promise<FederationResponse<T>> {
    return withHttpClientSpan({ method: request.method, route: routeTemplate(request.path), serverAddress: request.destination }, () => this.send<T>(request), (r) => r.status);
  }

  private async send<T>(request: FederationRequest): Promise<FederationResponse<T>> {
    const uri = request.path + queryString(request.query);
    const hasBody = request.method === 'PUT' || request.method === 'POST' || request.body !== undefined;
    const content = hasBody ? (request.body ?? {}) : undefined;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    if (content !== undefined) headers['content-type'] = 'application/json';
    if (request.signed !== false && this.options.signRequest) {
      headers.authorization = await this.options.signRequest(request.method, uri, request.destination, content);
    }
    const targets = await this.resolve(request.destination);
    const raw = await this.transport.send(targets, {
      method: request.method,
      uri,
      headers,
      body: content === undefined ? undefined : Buffer.from(JSON.stringify(content), 'utf8'),
      timeoutMs: request.timeoutMs ?? this.requestTimeoutMs,
      maxResponseBytes: request.maxResponseBytes ?? this.maxResponseBytes,
    });
    return interpretJson<T>(raw, request.destination);
  }

  /**
   * A request whose 2xx answer is not JSON (media): the status, headers and body bytes as received.
   * Non-2xx answers throw FederationHttpError like `request` does (with the JSON error body when there is one).
   */
  async requestBytes(request: FederationRequest & { readonly accept?: string }): Promise<BytesResponse> {
    return withHttpClientSpan({ method: request.method, route: routeTemplate(request.path), serverAddress: request.destination }, () => this.sendForBytes(request), (r) => r.status);
  }

  private async sendForBytes(request: FederationRequest & { readonly accept?: string }): Promise<BytesResponse> {
    const uri = request.path + queryString(request.query);
    const headers: Record<string, string> = { accept: request.accept ?? '*/*', 'user-agent': this.userAgent };
    if (request.signed !== false && this.options.signRequest) {
      headers.authorization = await this.options.signRequest(request.method, uri, request.destination, undefined);
    }
    const raw = await this.transport.send(await this.resolve(request.destination), {
      method: request.method,
      uri,
      headers,
      timeoutMs: request.timeoutMs ?? this.requestTimeoutMs,
      maxResponseBytes: request.maxResponseBytes ?? this.maxResponseBytes,
    });
    if (raw.status < 200 || raw.status > 299) throw new FederationHttpError(raw.status, parseJsonOrText(raw.body), request.destination);
    return raw;
  }

  /**
   * An unsigned GET of an absolute `https:` URL (a media `Location` redirect), under the same address
   * policy, TLS rules and limits as federation traffic. Redirects are not followed.
   */
  async getUrl(url: string, options: Pick<RequestOptions, 'timeoutMs' | 'maxResponseBytes'> = {}): Promise<BytesResponse> {
    const target = new URL(url);
    if (target.protocol !== 'https:') throw new FederationClientError('INVALID_RESPONSE', `refusing to fetch ${target.protocol} URL ${url}`);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const destination: ResolvedDestination = { connectHost: host, port: target.port ? Number(target.port) : 443, hostHeader: target.host, tlsServerName: isIP(host) ? null : host };
    const raw = await this.transport.send([destination], {
      method: 'GET',
      uri: target.pathname + target.search,
      headers: { accept: '*/*', 'user-agent': this.userAgent },
      timeoutMs: options.timeoutMs ?? this.requestTimeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? this.maxResponseBytes,
    });
    if (raw.status < 200 || raw.status > 299) throw new FederationHttpError(raw.status, parseJsonOrText(raw.body), target.host);
    return raw;
  }

  getJson<T = unknown>(destination: string, path: string, options: RequestOptions = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...options, destination, method: 'GET', path });
  }

  putJson<T = unknown>(destination: string, path: string, body: unknown, options: RequestOptions = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...options, destination, method: 'PUT', path, body });
  }

  postJson<T = unknown>(destination: string, path: string, body: unknown, options: RequestOptions = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...options, destination, method: 'POST', path, body });
  }

  /** `GET /_matrix/key/v2/server` on the server itself; the parsed JSON is returned unverified. */
  async fetchServerKeys(serverName: string): Promise<Record<string, unknown>> {
    const { body } = await this.getJson(serverName, '/_matrix/key/v2/server', { signed: false });
    return requireObject(body, serverName);
  }

  /** `POST /_matrix/key/v2/query` on a notary; the parsed JSON is returned unverified. */
  async queryKeysViaNotary(notary: string, query: KeyQueryRequest): Promise<Record<string, unknown>> {
    const { body } = await this.postJson(notary, '/_matrix/key/v2/query', query, { signed: false });
    return requireObject(body, notary);
  }

  /** Where a server name leads, as this client would connect. */
  resolveServerName(serverName: string): Promise<ResolvedDestination[]> {
    return this.resolve(serverName);
  }

  /**
   * The well-known fetch behind discovery: same address policy and TLS rules as federation
   * traffic, redirects followed over HTTPS only, loops and long chains refused.
   */
  async fetchWellKnown(hostname: string): Promise<WellKnownHttpResponse> {
    const port = this.options.wellKnownPort ?? 443;
    let url = new URL(`https://${hostname}${port === 443 ? '' : `:${port}`}/.well-known/matrix/server`);
    const visited = new Set<string>();
    for (let hop = 0; ; hop++) {
      visited.add(url.href);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const target: ResolvedDestination = {
        connectHost: host,
        port: url.port ? Number(url.port) : 443,
        hostHeader: url.host,
        tlsServerName: isIP(host) ? null : host,
      };
      const raw = await this.transport.send([target], {
        method: 'GET',
        uri: url.pathname + url.search,
        headers: { accept: 'application/json', 'user-agent': this.userAgent },
        timeoutMs: this.wellKnownTimeoutMs,
        maxResponseBytes: this.wellKnownMaxBytes,
      });
      const location = raw.headers['location'];
      if (!REDIRECTS.has(raw.status) || !location) {
        return { status: raw.status, headers: raw.headers, body: raw.body.toString('utf8') };
      }
      const next = new URL(location, url);
      if (next.protocol !== 'https:') throw new FederationClientError('INVALID_RESPONSE', `well-known for ${hostname} redirects off HTTPS`);
      if (visited.has(next.href)) throw new FederationClientError('INVALID_RESPONSE', `well-known for ${hostname} redirects in a loop`);
      if (hop + 1 > this.maxWellKnownRedirects) throw new FederationClientError('INVALID_RESPONSE', `well-known for ${hostname} redirects too often`);
      url = next;
    }
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function parseJsonOrText(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function interpretJson<T>(raw: RawResponse, destination: string): FederationResponse<T> {
  const text = raw.body.toString('utf8');
  let parsed: unknown;
  let parsedOk = true;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsedOk = false;
  }
  if (raw.status < 200 || raw.status > 299) throw new FederationHttpError(raw.status, parsedOk ? parsed : text, destination);
  if (!parsedOk || parsed === undefined) {
    throw new FederationClientError('INVALID_RESPONSE', `${destination} answered ${raw.status} without a JSON body`);
  }
  return { status: raw.status, body: parsed as T };
}

function requireObject(body: unknown, destination: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new FederationClientError('INVALID_RESPONSE', `${destination} answered a non-object`);
  }
  return body as Record<string, unknown>;
}

/**
 * A span name for a federation path: its first four segments (`/_matrix/federation/v1/send`), which name the
 * endpoint; the rest carries IDs (transaction, room, event) and would make every span name unique.
 */
export function routeTemplate(path: string): string {
  const segments = path.split('?')[0]!.split('/').filter(Boolean);
  const named = segments.slice(0, 4).join('/');
  return segments.length > 4 ? `/${named}/…` : `/${named}`;
}
