// In-test fedgate "servers" for state-resolver tests: each has its own signing key, SQLite store and
// embedded bus; their federation requests are routed in memory to the other servers' handlers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, type CommandError, type RoomLogEntry, type TopologyConfig } from '@fedgate/bus';
import { FederationHttpError, type KeyRing, type RequestOptions } from '@fedgate/federation-client';
import { generateSigningKey, type SigningKey, type VerifyKeyLookup } from '@fedgate/protocol';
import { openSqliteStore, type Store } from '@fedgate/store';
import type { GapFillLimits } from '../inbound-pdus';
import type { ParkingLimits } from '../room-parking';
import { StateResolver, type StateResolverDeps } from '../state-resolver';

/** A federation request as a peer on the test network receives it. */
export interface PeerRequest {
  from: string;
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  /** Path segments after `/_matrix/federation/`, decoded: e.g. `['v1', 'state_ids', roomId]`. */
  segments: string[];
  query: Record<string, unknown>;
  body: unknown;
}

/** Any other kind of server on the network (e.g. a scripted malicious one): answers requests itself. */
export interface FederationPeer {
  readonly name: string;
  verifyKey(keyId: string): ReturnType<SigningKey['verifyKey']> | undefined;
  answer(request: PeerRequest): Promise<{ status: number; body: unknown }>;
}

/** The application service every test server has (its user namespace is set per server). */
export const TEST_APP_SERVICE = { id: 'test-chat', url: null, asToken: 'as-test-chat', hsToken: 'hs-test-chat', senderLocalpart: 'chatbot' };

export interface TestServerOptions {
  gapFill?: GapFillLimits;
  parking?: Partial<ParkingLimits>;
  topology?: TopologyConfig;
  /** Start the bus consumers and command servers (else tests call the handlers directly). */
  start?: boolean;
  policyServer?: StateResolverDeps['policyServer'];
  metrics?: StateResolverDeps['metrics'];
  /** Another store than the server's own SQLite file (e.g. MongoDB in medium tests); closed with the server. */
  store?: Store;
  /** Elastic ownership over the server's store (the owned-room read cache comes with it). */
  elastic?: (store: Store) => StateResolverDeps['elastic'];
  /** Whether the resolver may take itself for its store's only writer (default: on its own SQLite file and not elastic, as the embedded gateway). */
  soleWriter?: boolean;
  /** The sole writer's read cache (StateResolverDeps.ownerReadCache); off by default here: tests write the store behind the resolver's back. */
  ownerReadCache?: boolean;
}

export class TestNetwork {
  readonly servers = new Map<string, TestServer>();
  readonly peers = new Map<string, FederationPeer>();
  /** Servers that do not answer (as if down). */
  readonly down = new Set<string>();
  readonly requests: Array<{ from: string; to: string; method: string; path: string }> = [];
  /** In-test policy servers: answer `/_matrix/policy/*` sent to a server name (its other requests go where they would). */
  readonly policyServers = new Map<string, (request: PeerRequest) => Promise<{ status: number; body: unknown }>>();

  keyRing(): KeyRing {
    return {
      prepare: async (): Promise<VerifyKeyLookup> => (server, keyId) => {
        const peer = this.peers.get(server);
        if (peer) return peer.verifyKey(keyId);
        const key = this.servers.get(server)?.key;
        return key && key.keyId === keyId ? key.verifyKey() : undefined;
      },
    };
  }

  async route(from: string, to: string, method: 'GET' | 'PUT' | 'POST', fullPath: string, body: unknown, options: RequestOptions): Promise<{ status: number; body: unknown }> {
    this.requests.push({ from, to, method, path: fullPath });
    const policyServer = this.policyServers.get(to);
    if (policyServer && fullPath.startsWith('/_matrix/policy/') && !this.down.has(to)) {
      const answer = await policyServer({ from, method, path: fullPath, segments: fullPath.split('/').slice(3), query: options.query ?? {}, body });
      if (answer.status >= 400) throw new FederationHttpError(answer.status, answer.body, to);
      return answer;
    }
    const peer = this.peers.get(to);
    if (peer && !this.down.has(to)) {
      const answer = await peer.answer({ from, method, path: fullPath, segments: fullPath.split('/').slice(3).map(decodeURIComponent), query: options.query ?? {}, body });
      if (answer.status >= 400) {
        const b = (answer.body ?? {}) as { errcode?: string; error?: string };
        throw new FederationHttpError(answer.status, { errcode: b.errcode ?? 'M_UNKNOWN', error: b.error ?? '' }, to);
      }
      return answer;
    }
    const target = this.servers.get(to);
    if (!target || this.down.has(to)) {
      const { FederationClientError } = await import('@fedgate/federation-client');
      throw new FederationClientError('UNREACHABLE', `${to} is down`);
    }
    const segments = fullPath.split('/').slice(3).map(decodeURIComponent);
    const [version, endpoint, a, b] = segments;
    const query = options.query ?? {};
    const r = target.resolver;
    const refuse = (reply: CommandError) => {
      throw new FederationHttpError(reply.status ?? 400, { errcode: reply.errcode, error: reply.error }, to);
    };
    const ok = (value: unknown) => ({ status: 200, body: value });
    switch (`${method} ${version}/${endpoint}`) {
      case 'GET v1/make_join':
      case 'GET v1/make_leave':
      case 'GET v1/make_knock': {
        const membership = endpoint.slice(5) as 'join' | 'leave' | 'knock';
        const ver = query.ver === undefined ? undefined : ([] as unknown[]).concat(query.ver).map(String);
        const reply = await r.handshakes.makeMembership({ roomId: a, userId: b, membership, origin: from, supportedVersions: ver });
        if (!reply.ok) return refuse(reply);
        return ok({ room_version: reply.roomVersion, event: reply.event });
      }
      case 'PUT v2/send_join':
      case 'PUT v2/send_leave':
      case 'PUT v1/send_knock': {
        const membership = endpoint.slice(5) as 'join' | 'leave' | 'knock';
        const omitMembers = membership === 'join' && String(query.omit_members) === 'true';
        const reply = await r.handshakes.sendMembership({ roomId: a, eventId: b, membership, origin: from, event: body as never, ...(omitMembers ? { omitMembers } : {}) });
        if (!reply.ok) return refuse(reply);
        if (membership === 'join') return ok({ origin: to, state: reply.state, auth_chain: reply.authChain, event: reply.event, servers_in_room: reply.serversInRoom, members_omitted: reply.membersOmitted ?? false });
        if (membership === 'knock') return ok({ knock_room_state: reply.knockRoomState });
        return ok({});
      }
      case 'PUT v2/invite': {
        const req = body as { event: never; room_version: string; invite_room_state: never[] };
        const reply = await r.handshakes.receiveInvite({ roomId: a, eventId: b, roomVersion: req.room_version, origin: from, event: req.event, inviteRoomState: req.invite_room_state ?? [] });
        if (!reply.ok) return refuse(reply);
        return ok({ event: reply.event });
      }
      case 'POST v1/get_missing_events': {
        const req = body as { earliest_events: string[]; latest_events: string[]; limit?: number; min_depth?: number };
        const events = await r.reader.missingEvents(a, { earliestEvents: req.earliest_events, latestEvents: req.latest_events, limit: req.limit ?? 10, minDepth: req.min_depth });
        return ok({ events });
      }
      case 'GET v1/state_ids': {
        const ids = await r.reader.stateIdsAt(a, String(query.event_id));
        if (!ids) return refuse({ ok: false, errcode: 'M_NOT_FOUND', error: 'no state', status: 404 });
        return ok({ pdu_ids: ids.pduIds, auth_chain_ids: ids.authChainIds });
      }
      case 'GET v1/state': {
        const state = await r.reader.stateAt(a, String(query.event_id));
        if (!state) return refuse({ ok: false, errcode: 'M_NOT_FOUND', error: 'no state', status: 404 });
        return ok({ pdus: state.pdus, auth_chain: state.authChain });
      }
      case 'GET v1/backfill': {
        const v = ([] as unknown[]).concat(query.v ?? []).map(String);
        return ok({ origin: to, origin_server_ts: Date.now(), pdus: await r.reader.backfill(a, v, Number(query.limit ?? 10)) });
      }
      case 'GET v1/event_auth': {
        const chain = await r.reader.eventAuth(a, b);
        if (!chain) return refuse({ ok: false, errcode: 'M_NOT_FOUND', error: 'no event', status: 404 });
        return ok({ auth_chain: chain });
      }
      case 'GET v1/event': {
        const event = await r.reader.event(a);
        if (!event) return refuse({ ok: false, errcode: 'M_NOT_FOUND', error: 'no event', status: 404 });
        return ok({ origin: to, origin_server_ts: Date.now(), pdus: [event.pdu] });
      }
    }
    return refuse({ ok: false, errcode: 'M_UNRECOGNIZED', error: `${method} ${fullPath}`, status: 404 });
  }

  addPeer(peer: FederationPeer): void {
    this.peers.set(peer.name, peer);
  }

  async add(serverName: string, options: TestServerOptions = {}): Promise<TestServer> {
    const server = await TestServer.create(this, serverName, options);
    this.servers.set(serverName, server);
    return server;
  }

  async close(): Promise<void> {
    for (const s of this.servers.values()) await s.close();
  }
}

export class TestServer {
  readonly published: RoomLogEntry[] = [];

  private constructor(
    readonly name: string,
    readonly key: SigningKey,
    readonly store: Store,
    readonly bus: EmbeddedBus,
    readonly topology: ReturnType<typeof busTopology>,
    readonly resolver: StateResolver,
    private readonly dir: string,
  ) {}

  /** Another state-resolver process over this server's store and bus (a restart, a second replica), with no federation. */
  offlineProcess(network: TestNetwork, deps: Partial<StateResolverDeps> = {}): StateResolver {
    const unreachable = async () => {
      throw new Error('no federation in this test');
    };
    const federation = { getJson: unreachable, putJson: unreachable, postJson: unreachable } as never;
    return new StateResolver({ store: this.store, bus: this.bus, topology: this.topology, identity: { serverName: this.name, signingKey: this.key }, federation, keyRing: network.keyRing(), ...deps });
  }

  static async create(network: TestNetwork, name: string, options: TestServerOptions): Promise<TestServer> {
    const dir = mkdtempSync(path.join(tmpdir(), 'state-resolver-'));
    const key = generateSigningKey();
    const store = options.store ?? openSqliteStore(path.join(dir, 'store.sqlite'));
    const topology = busTopology({ roomPartitions: 4, ...options.topology });
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), retryDelayMs: () => 5, pollIntervalMs: 10 });
    await bus.start();
    const federation = {
      getJson: (to: string, p: string, o: RequestOptions = {}) => network.route(name, to, 'GET', p, undefined, o),
      putJson: (to: string, p: string, body: unknown, o: RequestOptions = {}) => network.route(name, to, 'PUT', p, body, o),
      postJson: (to: string, p: string, body: unknown, o: RequestOptions = {}) => network.route(name, to, 'POST', p, body, o),
    };
    // As a gateway with a chat platform claiming every local user: invites for users no service claims are refused.
    await store.appServices.register({ ...TEST_APP_SERVICE, namespaces: { users: [{ exclusive: false, regex: `@.*:${name.replace(/\./g, '\\.')}` }], aliases: [], rooms: [] } });
    const resolver = new StateResolver({ store, bus, topology, identity: { serverName: name, signingKey: key }, federation: federation as never, keyRing: network.keyRing(), gapFill: options.gapFill, parking: options.parking, policyServer: options.policyServer, metrics: options.metrics, elastic: options.elastic?.(store), soleWriter: options.soleWriter ?? (!options.elastic && !options.store), ownerReadCache: options.ownerReadCache ?? false });
    const server = new TestServer(name, key, store, bus, topology, resolver, dir);
    const publish = bus.publish.bind(bus);
    bus.publish = (async (subject: string, data: unknown, opts: { messageId: string }) => {
      if (subject.startsWith(`${topology.prefix}.room.log.`)) server.published.push(data as RoomLogEntry);
      return publish(subject as never, data as never, opts);
    }) as typeof bus.publish;
    const publishBatch = bus.publishBatch.bind(bus);
    bus.publishBatch = async (items) => {
      for (const { subject, data } of items) if (subject.startsWith(`${topology.prefix}.room.log.`)) server.published.push(data as RoomLogEntry);
      return publishBatch(items);
    };
    if (options.start) await resolver.start();
    return server;
  }

  /** Sends a command as this server's chat-sync would (directly, no bus). */
  async send(roomId: string, sender: string, type: string, content: Record<string, unknown>, extra: { stateKey?: string; txnId?: string } = {}) {
    return this.resolver.localEvents.onCommand({ roomId, sender, type, content, ...extra });
  }

  async createRoom(creator: string, version = '12', extraState: Array<{ type: string; stateKey: string; content: Record<string, unknown> }> = []): Promise<string> {
    const created = await this.resolver.localEvents.create({ roomId: '', sender: creator, type: 'm.room.create', stateKey: '', content: { room_version: version } });
    const roomId = created.roomId;
    const steps = [
      { type: 'm.room.member', stateKey: creator, content: { membership: 'join' } },
      { type: 'm.room.power_levels', stateKey: '', content: { users: version === '12' ? {} : { [creator]: 100 }, users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50, invite: 0, redact: 50 } },
      { type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } },
      { type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: 'shared' } },
      ...extraState,
    ];
    for (const s of steps) {
      const reply = await this.send(roomId, creator, s.type, s.content, { stateKey: s.stateKey });
      if (!reply.ok) throw new Error(`${s.type}: ${reply.error}`);
    }
    return roomId;
  }

  /** Hands one of `from`'s stored events to this server's inbound path, as ingress would after /send. */
  async receive(from: TestServer, eventId: string) {
    const record = (await from.store.events.get(eventId))!;
    const room = (await this.store.rooms.get(record.roomId))!;
    return this.resolver.inbound.handle({ eventId, roomId: record.roomId, roomVersion: room.roomVersion, origin: from.name, txnId: 't1', receivedAt: Date.now(), redacted: false, pdu: record.pdu as never });
  }

  async close(): Promise<void> {
    await this.resolver.stop();
    await this.bus.close();
    await this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
