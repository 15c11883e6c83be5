// A chat-platform stand-in that connects to a homeserver the way Rocket.Chat's Matrix Bridge does:
// as an application service. It receives transactions through matrix-org's AppService (which checks
// the hs_token) and acts as its virtual users through matrix-js-sdk with identity assertion.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppService } from 'matrix-appservice';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import { createBridgeRegistration, newToken, registrationYaml, type BridgeRegistration } from './bridge-registration';
import { ReceivedEvents } from './received-events';

export interface HomeserverAddress {
  /** Client-server API base URL of the homeserver, e.g. `http://127.0.0.1:8008`. */
  homeserverUrl: string;
  /** The homeserver's server name (the part after the colon in its user IDs). */
  serverName: string;
}

export interface StartTestBridgeOptions extends Partial<HomeserverAddress> {
  /** Namespace prefix for virtual users and aliases; defaults to `chat`. */
  prefix?: string;
  /** Registration `id`; defaults to `test-bridge-<prefix>`. */
  id?: string;
  /** Host the homeserver reaches the bridge on; defaults to 127.0.0.1. */
  host?: string;
  receiveEphemeral?: boolean;
  /** Registers with `org.matrix.msc3202: true` (device lists and key counts in transactions); default false. */
  msc3202?: boolean;
  /** Per-request timeout of the bridge's client calls. */
  requestTimeoutMs?: number;
}

export class TestBridge {
  readonly received = new ReceivedEvents();
  /** transaction_id of every ping the homeserver sent (POST /_matrix/app/v1/ping). */
  pings: string[] = [];
  private readonly clients = new Map<string, MatrixClient>();
  private homeserver: HomeserverAddress | undefined;

  private constructor(
    readonly registration: BridgeRegistration,
    /** The registration YAML on disk, for `app_service_config_files` or fedgate's registration list. */
    readonly registrationPath: string,
    readonly url: string,
    private readonly server: Server,
    private readonly directory: string,
    private readonly options: StartTestBridgeOptions,
  ) {
    if (options.homeserverUrl !== undefined && options.serverName !== undefined) {
      this.homeserver = { homeserverUrl: options.homeserverUrl, serverName: options.serverName };
    }
  }

  /**
   * Points the bridge at its homeserver when that was not known at start: a homeserver that reads
   * the registration file at start and picks its server name then (the Synapse harness does).
   */
  connect(homeserver: HomeserverAddress): void {
    for (const client of this.clients.values()) client.stopClient();
    this.clients.clear();
    this.homeserver = homeserver;
  }

  static async start(options: StartTestBridgeOptions): Promise<TestBridge> {
    const prefix = options.prefix ?? 'chat';
    const host = options.host ?? '127.0.0.1';
    const hsToken = newToken();
    const appService = new AppService({ homeserverToken: hsToken });
    // matrix-appservice has no route for the homeserver's ping (POST /_matrix/app/v1/ping); answer it as a
    // current bridge does, so the homeserver's appservice ping endpoint can be exercised.
    const pings: string[] = [];
    type PingRequest = { headers: Record<string, string | string[] | undefined>; body?: { transaction_id?: unknown } };
    type PingResponse = { status(code: number): { json(body: unknown): void } };
    // The library's JSON body parser has already read the body into req.body.
    appService.expressApp.post('/_matrix/app/v1/ping', (req: PingRequest, res: PingResponse) => {
      if (req.headers.authorization !== `Bearer ${hsToken}`) {
        res.status(403).json({ errcode: 'M_FORBIDDEN', error: 'bad hs_token' });
        return;
      }
      const txn = req.body?.transaction_id;
      pings.push(typeof txn === 'string' ? txn : '');
      res.status(200).json({});
    });
    // Our own server around the library's request handling, so port 0 can be used without a race.
    // matrix-appservice 3 ignores to-device messages (MSC2409): the transaction body is read beside it.
    let recordToDevice: (messages: Record<string, any>[]) => void = () => undefined;
    let recordExtensions: (body: Record<string, any>) => void = () => undefined;
    let recordTransaction: (txnId: string, body: Record<string, any>) => void = () => undefined;
    const server = createServer((req, res) => {
      if (req.method === 'PUT' && req.url?.startsWith('/_matrix/app/v1/transactions/')) {
        const txnId = decodeURIComponent(req.url.slice('/_matrix/app/v1/transactions/'.length).split('?')[0]!);
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        // Registered before the library's body parser: runs first, so its events are recorded with this txnId.
        req.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            recordTransaction(txnId, body);
            const toDevice = body['de.sorunome.msc2409.to_device'];
            if (Array.isArray(toDevice)) recordToDevice(toDevice);
            recordExtensions(body);
          } catch {
            // Not JSON: the library answers it.
          }
        });
      }
      appService.expressApp(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const url = `http://${host}:${(server.address() as AddressInfo).port}`;
    const registration = createBridgeRegistration({
      id: options.id ?? `test-bridge-${prefix}`,
      url,
      serverName: options.serverName,
      prefix,
      receiveEphemeral: options.receiveEphemeral,
      msc3202: options.msc3202,
      hsToken,
    });
    const directory = await mkdtemp(path.join(tmpdir(), 'fedgate-bridge-'));
    const registrationPath = path.join(directory, 'registration.yaml');
    await writeFile(registrationPath, registrationYaml(registration));

    const bridge = new TestBridge(registration, registrationPath, url, server, directory, options);
    bridge.pings = pings;
    // The library takes a transaction unless its txnId is the last one it took; which txn carried each event is
    // kept so a duplicate says whether it was a transaction taken twice or an event in two transactions.
    let lastTaken = '';
    const txnOfEvent = new Map<string, string>();
    recordTransaction = (txnId, body) => {
      const events: Record<string, any>[] = Array.isArray(body.events) ? body.events : [];
      const eventIds = events.map((e) => String(e.event_id));
      bridge.received.transactions.push({ txnId, receivedAt: Date.now(), eventIds, skippedAsRetry: txnId === lastTaken });
      lastTaken = txnId;
      for (const eventId of eventIds) txnOfEvent.set(eventId, txnId);
    };
    appService.on('event', (event) => bridge.received.record('event', event, txnOfEvent.get(String(event.event_id))));
    appService.on('ephemeral', (event) => bridge.received.record('ephemeral', event));
    recordToDevice = (messages) => messages.forEach((message) => bridge.received.record('to_device', message));
    // MSC3202: device-list changes and key counts, one record per transaction that carried them.
    recordExtensions = (body) => {
      const lists = body['org.matrix.msc3202.device_lists'];
      if (lists) bridge.received.record('device_lists', lists);
      const counts = body['org.matrix.msc3202.device_one_time_keys_count'];
      if (counts) bridge.received.record('key_counts', { one_time_keys: counts, unused_fallback_key_types: body['org.matrix.msc3202.device_unused_fallback_key_types'] ?? {} });
    };
    return bridge;
  }

  get serverName(): string {
    return this.connected().serverName;
  }

  /** The AS's own user, `@<sender_localpart>:<server>`. */
  get botUserId(): string {
    return `@${this.registration.sender_localpart}:${this.serverName}`;
  }

  /** `@<prefix>_<name>:<server>`: a user ID inside the bridge's exclusive namespace. */
  virtualUserId(name: string): string {
    return `@${this.prefix}_${name}:${this.serverName}`;
  }

  aliasFor(name: string): string {
    return `#${this.prefix}_${name}:${this.serverName}`;
  }

  /**
   * Registers a virtual user with the AS registration type (no password, no login). Registering
   * one that exists already is fine: bridges do this lazily and repeat it.
   */
  async registerVirtualUser(localpart: string): Promise<string> {
    const bot = this.asUser(this.botUserId);
    try {
      const response = await bot.http.authedRequest<{ user_id: string }>(Method.Post, '/register', undefined, {
        type: 'm.login.application_service',
        username: localpart,
        inhibit_login: true,
      });
      return response.user_id;
    } catch (err) {
      if ((err as { errcode?: string }).errcode === 'M_USER_IN_USE') return `@${localpart}:${this.serverName}`;
      throw err;
    }
  }

  /**
   * A matrix-js-sdk client acting as `userId` (a virtual user or the bot): the as_token as the
   * access token plus `?user_id=` on every request (the spec's identity assertion). Not syncing:
   * call the API directly; what the bridge is sent arrives in `received`.
   */
  asUser(userId: string): MatrixClient {
    let client = this.clients.get(userId);
    if (!client) {
      client = createClient({
        baseUrl: this.connected().homeserverUrl,
        accessToken: this.registration.as_token,
        userId,
        useAuthorizationHeader: true,
        // matrix-js-sdk 37 declares `queryParams` but its HTTP layer never applies it, so the
        // `user_id` assertion goes in through the fetch function it does honour.
        fetchFn: assertingIdentity(userId),
        localTimeoutMs: this.options.requestTimeoutMs ?? 15_000,
      });
      this.clients.set(userId, client);
    }
    return client;
  }

  /** `waitForEvent` on everything the homeserver pushed to the bridge. */
  waitForEvent(predicate: (event: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>> {
    return this.received.waitForEvent(predicate, timeoutMs);
  }

  async stop(): Promise<void> {
    for (const client of this.clients.values()) client.stopClient();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.directory, { recursive: true, force: true });
  }

  private connected(): HomeserverAddress {
    if (!this.homeserver) throw new Error('the test bridge has no homeserver yet: pass homeserverUrl and serverName, or call connect()');
    return this.homeserver;
  }

  private get prefix(): string {
    return this.options.prefix ?? 'chat';
  }
}

/** A fetch that adds `user_id=<userId>` to every request's query, unless one is there already. */
function assertingIdentity(userId: string): typeof globalThis.fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.searchParams.has('user_id')) url.searchParams.set('user_id', userId);
    return globalThis.fetch(input instanceof Request ? new Request(url, input) : url, init);
  };
}
