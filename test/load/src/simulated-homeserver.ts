// The load generator's remote homeserver: its own signing key and TLS certificate on loopback (the over-the-wire
// homeserver of test/support, honest here), joins a target's rooms through make_join/send_join, answers every
// callback (/event, /state_ids, /get_missing_events, keys) from the events it knows, and sends signed PDUs built
// as a linear chain on top of its own join, so the target never needs to fetch anything to accept them.
import { stateMapKey } from '@fedgate/room-state';
import { MaliciousHttpsServer, type EventFields, type JoinedRoom, type ServerCertificate, type SignedEvent, type TestCertificateAuthority } from '@fedgate/testing';

/** One room the simulator has joined and keeps sending into. */
export class RoomSender {
  private head: string;
  private depth = 1_000;
  constructor(
    private readonly server: MaliciousHttpsServer,
    readonly room: JoinedRoom,
    readonly sender: string,
  ) {
    this.head = room.join.eventId;
  }

  /** The next m.room.message in this room, on top of the previous one. */
  nextMessage(body: string): SignedEvent {
    const auth = ['m.room.create', 'm.room.power_levels'].map((type) => this.room.state.get(stateMapKey(type, ''))!);
    const event = this.server.evil.sign(
      {
        room_id: this.room.roomId,
        sender: this.sender,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body },
        prev_events: [this.head],
        auth_events: [...auth, this.room.join.eventId],
        depth: ++this.depth,
        origin_server_ts: Date.now(),
      },
      this.room.roomVersion,
    );
    this.head = event.eventId;
    return event;
  }

  /**
   * The join of `joiner`'s user, made and signed by `joiner` (as it would be after a make_join through some other
   * resident), on top of this sender's chain: relayed in this server's transactions, the target learns of another
   * server in the room without sending the join on to anyone (a remote server's event is its own to send).
   */
  async relayedJoin(joiner: JoinSigner, localpart = 'loader'): Promise<SignedEvent> {
    const auth = ['m.room.create', 'm.room.power_levels', 'm.room.join_rules'].map((type) => this.room.state.get(stateMapKey(type, ''))!);
    const userId = joiner.user(localpart);
    const event = await joiner.sign(
      {
        room_id: this.room.roomId,
        sender: userId,
        state_key: userId,
        type: 'm.room.member',
        content: { membership: 'join' },
        prev_events: [this.head],
        auth_events: auth,
        depth: ++this.depth,
        origin_server_ts: Date.now(),
      },
      this.room.roomVersion,
    );
    this.head = event.eventId;
    return event;
  }
}

/** A server that signs events as its own (in this thread or in a worker's). */
export interface JoinSigner {
  user(localpart: string): string;
  sign(fields: EventFields, roomVersion: string): SignedEvent | Promise<SignedEvent>;
}

/** A `/send` as it reached a simulated server. */
export interface Arrival {
  /** When its request headers arrived, before the body was read and parsed (the receiver's own delays excluded). */
  at: number;
  pdus: Record<string, unknown>[];
  /** When the sender built the transaction (its origin_server_ts), to tell its delays from the receiver's. */
  originTs?: number;
  /** The PDUs' event IDs, when the receiving thread computed them (then `pdus` may be left empty). */
  eventIds?: string[];
}

export interface SimulatedHomeserverOptions {
  /** One TLS certificate for many simulated servers (issuing one costs an RSA key pair). */
  certificate?: ServerCertificate;
  /**
   * Whether `/send` transactions are kept (`wire.transactions`, `arrivals`). A fan-out of a thousand servers turns
   * it off while the room is built (each join reaches every server already in: ~N²/2 PDUs kept for nothing) and on
   * for the message it measures.
   */
  keepTransactions?: boolean;
  /** Called for each `/send` received, with its arrival when transactions are kept. */
  onReceived?: (arrival: Arrival | undefined) => void;
}

export class SimulatedHomeserver {
  readonly arrivals: Arrival[] = [];
  /** `/send` transactions received, kept or not. */
  received = 0;
  keepTransactions: boolean;

  private constructor(
    readonly wire: MaliciousHttpsServer,
    options: SimulatedHomeserverOptions,
  ) {
    this.keepTransactions = options.keepTransactions ?? true;
    wire.evil.servesMissingEvents = true;
    wire.intercept = async (request) => {
      if (request.method !== 'PUT' || !request.path.startsWith('/_matrix/federation/v1/send/')) return undefined;
      this.received++;
      if (!this.keepTransactions) {
        options.onReceived?.(undefined);
        return { status: 200, body: { pdus: {} } };
      }
      const body = (request.body ?? {}) as { pdus?: Record<string, unknown>[]; origin_server_ts?: unknown };
      const arrival = { at: request.receivedAt, pdus: body.pdus ?? [], originTs: typeof body.origin_server_ts === 'number' ? body.origin_server_ts : undefined };
      if (options.onReceived) options.onReceived(arrival);
      else this.arrivals.push(arrival);
      return undefined;
    };
  }

  static async start(ca: TestCertificateAuthority, options: SimulatedHomeserverOptions = {}): Promise<SimulatedHomeserver> {
    return new SimulatedHomeserver(await MaliciousHttpsServer.start(ca, 'localhost', options.certificate), options);
  }

  get name(): string {
    return this.wire.name;
  }

  openConnections(): Promise<number> {
    return this.wire.openConnections();
  }

  forgetTlsSessions(): void {
    this.wire.forgetTlsSessions();
  }

  closeIdleConnections(): void {
    this.wire.closeIdleConnections();
  }

  user(localpart: string): string {
    return this.wire.evil.user(localpart);
  }

  sign(fields: EventFields, roomVersion: string): SignedEvent {
    return this.wire.evil.sign(fields, roomVersion);
  }

  async join(target: string, roomId: string, localpart = 'loader'): Promise<RoomSender> {
    const room = await this.wire.joinRoom(target, roomId, localpart);
    return new RoomSender(this.wire, room, this.wire.evil.user(localpart));
  }

  /**
   * Joins the room and learns nothing from the answer (no RoomSender: for servers that only receive). With
   * `omitMembers`, the resident serves the state without the members (a partial-state join), so building a room of a
   * thousand costs neither side the whole state a thousand times. The two requests timed apart.
   */
  async joinOnly(target: string, roomId: string, options: { omitMembers?: boolean; localpart?: string } = {}): Promise<{ makeJoinMs: number; sendJoinMs: number }> {
    const userId = this.wire.evil.user(options.localpart ?? 'loader');
    const versions = Array.from({ length: 12 }, (_, i) => `ver=${i + 1}`).join('&');
    const started = Date.now();
    const made = await this.wire.request(target, 'GET', `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}?${versions}`);
    if (made.status !== 200) throw new Error(`make_join: ${made.status} ${JSON.stringify(made.json)}`);
    const madeAt = Date.now();
    const join = this.wire.evil.sign({ ...made.json.event, origin_server_ts: Date.now() }, String(made.json.room_version));
    const query = options.omitMembers ? '?omit_members=true' : '';
    const sent = await this.wire.request(target, 'PUT', `/_matrix/federation/v2/send_join/${encodeURIComponent(roomId)}/${encodeURIComponent(join.eventId)}${query}`, join.pdu);
    if (sent.status !== 200) throw new Error(`send_join: ${sent.status} ${JSON.stringify(sent.json).slice(0, 300)}`);
    return { makeJoinMs: madeAt - started, sendJoinMs: Date.now() - madeAt };
  }

  /** One /send transaction; the per-PDU errors the target reported. */
  async send(target: string, events: readonly SignedEvent[]): Promise<{ status: number; errors: string[] }> {
    const answer = await this.wire.sendPdus(target, events);
    const results = (answer.json?.pdus ?? {}) as Record<string, { error?: string }>;
    return { status: answer.status, errors: Object.entries(results).filter(([, r]) => r.error).map(([id, r]) => `${id}: ${r.error}`) };
  }

  stop(): Promise<void> {
    return this.wire.stop();
  }
}
