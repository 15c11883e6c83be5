// A scriptable malicious homeserver for in-process tests: its own signing key, it signs whatever it is told,
// and it answers federation requests (/event, /state_ids, /state, /get_missing_events, make_join, send_join…)
// honestly from what it knows — unless a test scripts a lie for that endpoint. It lives on a state-resolver
// TestNetwork next to fedgate TestServers, which fetch from it, join its rooms and receive its events the way
// ingress hands them over (verified first, then the inbound path).
import { partitionRemoteEvents, verifyRemoteEvents } from '@fedgate/federation-client';
import {
  computeEventId,
  computeReferenceHash,
  generateSigningKey,
  roomVersionRules,
  signEvent,
  type Pdu,
  type RoomVersionRules,
  type SigningKey,
} from '@fedgate/protocol';
import { authTypesForEvent, stateMapKey, toRoomEvent } from '@fedgate/room-state';
import type { FederationPeer, PeerRequest, TestNetwork, TestServer } from '@fedgate/state-resolver';

export interface SignedEvent {
  eventId: string;
  pdu: Pdu;
}

export interface PeerAnswer {
  status: number;
  body: unknown;
}

/** The endpoints a lie can be scripted for (the path segment after the version). */
export type Endpoint = 'event' | 'state_ids' | 'state' | 'get_missing_events' | 'make_join' | 'send_join' | 'event_auth' | 'backfill';

/**
 * A scripted answer: return one to lie, or undefined to let the honest answer through. `honest()` computes the
 * honest answer, for lies that tamper with it.
 */
export type Lie = (request: PeerRequest, honest: () => Promise<PeerAnswer>) => PeerAnswer | undefined | Promise<PeerAnswer | undefined>;

/** What happened to one PDU handed to a fedgate as ingress would: refused on receipt, or its stored outcome. */
export interface Delivery {
  eventId?: string;
  refused?: string;
  status?: 'accepted' | 'soft_failed' | 'rejected';
  reason?: string;
  /** The inbound path threw (a bus handler would nak or dead-letter it with this reason). */
  error?: string;
}

/** A room this server hosts (so fedgates can join it through make_join/send_join). */
export interface HostedRoom {
  roomId: string;
  rules: RoomVersionRules;
  state: Map<string, string>;
  /** Latest event (the DAG is a line here). */
  head: string;
  depth: number;
}

interface MissingEventsRequest {
  earliest_events?: string[];
  latest_events?: string[];
  limit?: number;
  min_depth?: number;
}

export interface EventFields {
  type: string;
  sender: string;
  state_key?: string;
  content?: Record<string, unknown>;
  room_id?: string;
  prev_events?: string[];
  auth_events?: string[];
  depth?: number;
  origin_server_ts?: number;
  redacts?: string;
  [field: string]: unknown;
}

const json = (body: unknown, status = 200): PeerAnswer => ({ status, body });
const notFound = (error: string) => json({ errcode: 'M_NOT_FOUND', error }, 404);

export class MaliciousServer implements FederationPeer {
  readonly key: SigningKey = generateSigningKey();
  /** Every event it knows and will serve: its own and those it learnt from fedgates. */
  readonly known = new Map<string, SignedEvent>();
  readonly hosted = new Map<string, HostedRoom>();
  /** Every request it was sent, in order. */
  readonly requests: PeerRequest[] = [];
  private readonly lies = new Map<Endpoint, Lie>();
  /**
   * Whether /get_missing_events is answered from the events it knows. Off by default: the adversarial suites
   * script gaps its victims must fill through /state_ids; a simulated honest homeserver turns it on.
   */
  servesMissingEvents = false;
  private clock = 1_700_000_000_000;
  /**
   * Whether send_join honours `omit_members=true` for the rooms it hosts (partial-state joins): the state without
   * membership events but the joiner's own, the auth chain of what it serves, `servers_in_room`. Off by default,
   * so the tests written before it still get the whole state.
   */
  servesPartialState = false;

  private constructor(
    readonly name: string,
    private readonly testNetwork?: TestNetwork,
  ) {}

  /** Puts a malicious server named `name` on `network`: fedgates there verify its keys and send it requests. */
  static on(network: TestNetwork, name = 'evil.test'): MaliciousServer {
    const server = new MaliciousServer(name, network);
    network.addPeer(server);
    return server;
  }

  /** One on no in-memory network (MaliciousHttpsServer puts it on the wire). */
  static detached(name: string): MaliciousServer {
    return new MaliciousServer(name);
  }

  /** The in-memory network it is on (the in-process methods need it). */
  get network(): TestNetwork {
    if (!this.testNetwork) throw new Error(`${this.name} is not on a TestNetwork: use MaliciousHttpsServer's methods`);
    return this.testNetwork;
  }

  user(localpart: string): string {
    return `@${localpart}:${this.name}`;
  }

  verifyKey(keyId: string) {
    return keyId === this.key.keyId ? this.key.verifyKey() : undefined;
  }

  /** Scripts a lie for every later request to `endpoint` (replacing any earlier one). */
  lie(endpoint: Endpoint, lie: Lie): this {
    this.lies.set(endpoint, lie);
    return this;
  }

  tellTheTruth(endpoint?: Endpoint): this {
    if (endpoint) this.lies.delete(endpoint);
    else this.lies.clear();
    return this;
  }

  /**
   * Hashes and signs whatever it is given (missing depth, timestamp and v1 event ID filled in), as this server and
   * as each of `alsoSignAs` (keys of other servers it holds, e.g. stolen or its own second identity). Remembered.
   * With `floats`, hashes and signs by the v1–5 number rules whatever the room version: well signed, but bad JSON
   * for a v6+ room (canonical JSON there refuses floats, so no honest server could have signed it).
   */
  sign(fields: EventFields, version: string, alsoSignAs: Array<{ server: string; key: SigningKey }> = [], options: { floats?: boolean } = {}): SignedEvent {
    const rules = options.floats ? { ...roomVersionRules(version), strictCanonicalJson: false } : roomVersionRules(version);
    const body: Record<string, unknown> = { depth: 1, origin_server_ts: this.clock++, prev_events: [], auth_events: [], content: {}, ...fields };
    body.prev_events = (body.prev_events as string[]).map((id) => this.reference(id, rules));
    body.auth_events = (body.auth_events as string[]).map((id) => this.reference(id, rules));
    if (!rules.creatorIsSender) body.origin = this.name;
    if (rules.eventFormat === 'v1' && typeof body.event_id !== 'string') body.event_id = `$${Math.random().toString(36).slice(2)}:${this.name}`;
    let pdu = signEvent(body, rules, this.name, this.key) as unknown as Pdu;
    for (const other of alsoSignAs) pdu = signEvent(pdu, rules, other.server, other.key) as unknown as Pdu;
    const signed = { eventId: computeEventId(pdu, rules), pdu };
    this.known.set(signed.eventId, signed);
    return signed;
  }

  /** Remembers events it learnt elsewhere, so it can serve them. */
  learn(pdus: readonly Record<string, unknown>[], version: string): void {
    const rules = roomVersionRules(version);
    for (const raw of pdus) {
      const { unsigned: _u, ...pdu } = raw;
      this.known.set(computeEventId(pdu, rules), { eventId: computeEventId(pdu, rules), pdu: pdu as Pdu });
    }
  }

  /**
   * An event in a fedgate's room, built as an honest server would from that fedgate's view (prev events = its
   * forward extremities, auth events selected from its current state, depth above the prevs); any field can be
   * overridden to lie (`floats`: see `sign`).
   */
  async eventIn(victim: TestServer, roomId: string, fields: EventFields, options: { floats?: boolean } = {}): Promise<SignedEvent> {
    const room = (await victim.store.rooms.get(roomId))!;
    const rules = roomVersionRules(room.roomVersion);
    const current = (await victim.resolver.timeline.currentState(roomId))!;
    const prevs = await victim.store.rooms.getForwardExtremities(roomId);
    const prevRecords = [...(await victim.store.events.getMany(prevs)).values()];
    const auth = authTypesForEvent({ type: fields.type, sender: fields.sender, state_key: fields.state_key, content: (fields.content ?? {}) as never }, rules)
      .map((r) => current.get(stateMapKey(r.type, r.state_key)))
      .filter((id): id is string => id !== undefined);
    await this.learnFrom(victim, [...prevs, ...auth]);
    return this.sign({ room_id: roomId, prev_events: prevs, auth_events: auth, depth: Math.max(0, ...prevRecords.map((r) => r.depth)) + 1, ...fields }, rules.id, [], options);
  }

  /** Joins `localpart` to a fedgate's room through make_join and send_join, as ingress would hand them over. */
  async joinRoom(victim: TestServer, roomId: string, localpart = 'mallory', tamper: (template: Record<string, unknown>) => Record<string, unknown> = (t) => t): Promise<SignedEvent> {
    const userId = this.user(localpart);
    const made = await victim.resolver.handshakes.makeMembership({ roomId, userId, membership: 'join', origin: this.name, supportedVersions: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'] });
    if (!made.ok) throw new Error(`make_join refused: ${made.errcode} ${made.error}`);
    const join = this.sign(tamper({ ...(made.event as Record<string, unknown>), origin_server_ts: this.clock++ }) as EventFields, made.roomVersion);
    const sent = await this.sendJoin(victim, roomId, join, made.roomVersion);
    if (!sent.ok) throw new Error(`send_join refused: ${sent.errcode} ${sent.error}`);
    return join;
  }

  /** send_join of an event it made itself (no make_join first, if it likes), verified as ingress does. */
  async sendJoin(victim: TestServer, roomId: string, join: SignedEvent, version: string) {
    const [checked] = await verifyRemoteEvents(this.network.keyRing(), [join.pdu], { roomVersion: version, roomId, countersignedBy: victim.name });
    if (!checked.ok) return { ok: false as const, errcode: checked.errcode, error: checked.reason };
    const reply = await victim.resolver.handshakes.sendMembership({ roomId, eventId: join.eventId, membership: 'join', origin: this.name, event: join.pdu as never });
    if (reply.ok) {
      this.learn([...((reply.state ?? []) as Record<string, unknown>[]), ...((reply.authChain ?? []) as Record<string, unknown>[])], version);
      if (reply.event) this.learn([reply.event as Record<string, unknown>], version);
    }
    return reply;
  }

  /**
   * Hands PDUs to a fedgate as its ingress would after a /send: each verified (shape, room, signatures, hash),
   * then the inbound path. One result per PDU.
   */
  async deliver(victim: TestServer, events: readonly SignedEvent[]): Promise<Delivery[]> {
    const results: Delivery[] = [];
    for (const e of events) {
      const roomId = String(e.pdu.room_id);
      const room = await victim.store.rooms.get(roomId);
      if (!room) {
        results.push({ eventId: e.eventId, refused: `room ${roomId} is not known` });
        continue;
      }
      const { valid, refused } = partitionRemoteEvents(await verifyRemoteEvents(this.network.keyRing(), [e.pdu], { roomVersion: room.roomVersion, roomId }));
      if (refused.length > 0) {
        results.push({ eventId: e.eventId, refused: refused[0].reason });
        continue;
      }
      try {
        await victim.resolver.inbound.handle({ eventId: valid[0].eventId, roomId, roomVersion: room.roomVersion, origin: this.name, txnId: `t${this.clock++}`, receivedAt: Date.now(), redacted: valid[0].redacted, pdu: valid[0].pdu as never });
      } catch (err) {
        results.push({ eventId: e.eventId, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      const record = await victim.store.events.get(e.eventId);
      results.push({ eventId: e.eventId, status: record?.status, reason: record?.reason });
    }
    return results;
  }

  /**
   * Hosts a room of its own (create, creator's join, power levels, join rules), so a fedgate can be made to join it.
   * `creator` is a localpart of this server.
   */
  createRoom(version: string, creator = 'boss', joinRule = 'public'): HostedRoom {
    const rules = roomVersionRules(version);
    const sender = this.user(creator);
    const createContent: Record<string, unknown> = { room_version: version };
    if (!rules.creatorIsSender) createContent.creator = sender;
    const create = this.sign({ type: 'm.room.create', state_key: '', sender, content: createContent, ...(rules.roomIdFromCreateEvent ? {} : { room_id: `!${Math.random().toString(36).slice(2)}:${this.name}` }) }, version);
    const roomId = rules.roomIdFromCreateEvent ? '!' + create.eventId.slice(1) : String(create.pdu.room_id);
    const room: HostedRoom = { roomId, rules, state: new Map([[stateMapKey('m.room.create', ''), create.eventId]]), head: create.eventId, depth: 1 };
    this.hosted.set(roomId, room);
    this.append(room, { type: 'm.room.member', state_key: sender, sender, content: { membership: 'join' } });
    this.append(room, { type: 'm.room.power_levels', state_key: '', sender, content: { users: rules.creatorIsSender && rules.id === '12' ? {} : { [sender]: 100 }, invite: 0 } });
    this.append(room, { type: 'm.room.join_rules', state_key: '', sender, content: { join_rule: joinRule } });
    return room;
  }

  /** Appends an event to a hosted room on top of its head, auth events from its state. */
  append(room: HostedRoom, fields: EventFields): SignedEvent {
    const auth = authTypesForEvent({ type: fields.type, sender: fields.sender, state_key: fields.state_key, content: (fields.content ?? {}) as never }, room.rules)
      .map((r) => room.state.get(stateMapKey(r.type, r.state_key)))
      .filter((id): id is string => id !== undefined);
    const e = this.sign({ room_id: room.roomId, prev_events: [room.head], auth_events: auth, depth: ++room.depth, ...fields }, room.rules.id);
    room.head = e.eventId;
    if (fields.state_key !== undefined) room.state.set(stateMapKey(fields.type, fields.state_key), e.eventId);
    return e;
  }

  /**
   * The events it knows of `roomId` before `latest_events` and after `earliest_events` (prev-event walk),
   * oldest first, at most `limit` — what a homeserver answers to /get_missing_events.
   */
  missingEvents(roomId: string, request: MissingEventsRequest): string[] {
    const earliest = new Set(request.earliest_events ?? []);
    const limit = Math.min(request.limit ?? 10, 100);
    const found: { id: string; depth: number }[] = [];
    const seen = new Set<string>(request.latest_events ?? []);
    const queue = [...seen];
    while (queue.length > 0 && found.length < limit) {
      const e = this.known.get(queue.shift()!);
      if (!e) continue;
      for (const prev of toRoomEvent(e.pdu, e.eventId).prev_events) {
        if (seen.has(prev) || earliest.has(prev)) continue;
        seen.add(prev);
        const p = this.known.get(prev);
        if (!p || p.pdu.room_id !== roomId || Number(p.pdu.depth) < (request.min_depth ?? 0)) continue;
        found.push({ id: prev, depth: Number(p.pdu.depth) });
        queue.push(prev);
      }
    }
    return found.slice(0, limit).sort((x, y) => x.depth - y.depth).map((f) => f.id);
  }

  /** The auth chain of `ids` among the events it knows. */
  authChainOf(ids: readonly string[]): string[] {
    const seen = new Set<string>();
    const stack = [...ids];
    while (stack.length > 0) {
      const e = this.known.get(stack.pop()!);
      if (!e) continue;
      for (const a of toRoomEvent(e.pdu, e.eventId).auth_events) {
        if (!seen.has(a)) {
          seen.add(a);
          stack.push(a);
        }
      }
    }
    return [...seen];
  }

  async answer(request: PeerRequest): Promise<PeerAnswer> {
    this.requests.push(request);
    const endpoint = request.segments[1] as Endpoint;
    const honest = () => this.honest(request);
    const lie = this.lies.get(endpoint);
    const lied = lie ? await lie(request, honest) : undefined;
    return lied ?? honest();
  }

  private async honest(request: PeerRequest): Promise<PeerAnswer> {
    const [, endpoint, a, b] = request.segments;
    const pdu = (id: string) => this.known.get(id)?.pdu;
    switch (endpoint) {
      case 'event': {
        const e = pdu(a);
        return e ? json({ origin: this.name, origin_server_ts: this.clock, pdus: [e] }) : notFound(`no event ${a}`);
      }
      case 'state_ids':
      case 'state': {
        const room = this.hosted.get(a);
        if (!room) return notFound(`no state for ${a}`);
        const ids = [...room.state.values()];
        const chain = this.authChainOf(ids);
        return endpoint === 'state_ids' ? json({ pdu_ids: ids, auth_chain_ids: chain }) : json({ pdus: ids.map(pdu), auth_chain: chain.map(pdu) });
      }
      case 'event_auth':
        return json({ auth_chain: this.authChainOf([b]).map(pdu) });
      case 'get_missing_events':
        return json({ events: this.servesMissingEvents ? this.missingEvents(a, request.body as MissingEventsRequest).map(pdu) : [] });
      case 'backfill':
        return json({ origin: this.name, origin_server_ts: this.clock, pdus: [] });
      case 'make_join': {
        const room = this.hosted.get(a);
        if (!room) return notFound(`not in ${a}`);
        const auth = authTypesForEvent({ type: 'm.room.member', sender: b, state_key: b, content: { membership: 'join' } }, room.rules)
          .map((r) => room.state.get(stateMapKey(r.type, r.state_key)))
          .filter((id): id is string => id !== undefined);
        const template = { room_id: room.roomId, sender: b, type: 'm.room.member', state_key: b, content: { membership: 'join' }, prev_events: [this.reference(room.head, room.rules)], auth_events: auth.map((id) => this.reference(id, room.rules)), depth: room.depth + 1, origin_server_ts: this.clock };
        return json({ room_version: room.rules.id, event: template });
      }
      case 'send_join': {
        const room = this.hosted.get(a);
        if (!room) return notFound(`not in ${a}`);
        this.learn([request.body as Record<string, unknown>], room.rules.id);
        const joiner = (request.body as { state_key?: unknown } | null)?.state_key;
        const omit = this.servesPartialState && String(request.query.omit_members) === 'true';
        const ids = [...room.state].filter(([key]) => !omit || !key.startsWith('m.room.member\u0000') || key === stateMapKey('m.room.member', String(joiner))).map(([, id]) => id);
        const served = new Set(ids);
        const chain = this.authChainOf(ids).filter((id) => !omit || !served.has(id));
        return json({ origin: this.name, state: ids.map(pdu), auth_chain: chain.map(pdu), event: request.body, servers_in_room: [this.name], members_omitted: omit });
      }
    }
    return json({ errcode: 'M_UNRECOGNIZED', error: `${request.method} ${request.path}` }, 404);
  }

  private reference(id: string, rules: RoomVersionRules): unknown {
    if (rules.eventFormat !== 'v1') return id;
    const e = this.known.get(id);
    return [id, { sha256: e ? computeReferenceHash(e.pdu, rules) : '' }];
  }

  private async learnFrom(victim: TestServer, ids: readonly string[]): Promise<void> {
    const records = await victim.store.events.getMany(ids.filter((id) => !this.known.has(id)));
    for (const r of records.values()) this.known.set(r.eventId, { eventId: r.eventId, pdu: r.pdu });
  }
}
