// The load generator's remote homeserver: its own signing key and TLS certificate on loopback (the over-the-wire
// homeserver of test/support, honest here), joins a target's rooms through make_join/send_join, answers every
// callback (/event, /state_ids, /get_missing_events, keys) from the events it knows, and sends signed PDUs built
// as a linear chain on top of its own join, so the target never needs to fetch anything to accept them.
import { stateMapKey } from '@fedgate/room-state';
import { MaliciousHttpsServer, type JoinedRoom, type SignedEvent, type TestCertificateAuthority } from '@fedgate/testing';

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
}

export class SimulatedHomeserver {
  /** When each `/send` arrived, stamped as it arrives (a scan of `wire.transactions` later is late by whatever else this process was doing). */
  readonly arrivals: Array<{ at: number; pdus: Record<string, unknown>[]; originTs?: number }> = [];

  private constructor(readonly wire: MaliciousHttpsServer) {
    wire.evil.servesMissingEvents = true;
    wire.intercept = async (request) => {
      if (request.method === 'PUT' && request.path.startsWith('/_matrix/federation/v1/send/')) {
        const body = (request.body ?? {}) as { pdus?: Record<string, unknown>[]; origin_server_ts?: unknown };
        // origin_server_ts: when the sender built the transaction, to tell its delays from this process's.
        this.arrivals.push({ at: Date.now(), pdus: body.pdus ?? [], originTs: typeof body.origin_server_ts === 'number' ? body.origin_server_ts : undefined });
      }
      return undefined;
    };
  }

  static async start(ca: TestCertificateAuthority): Promise<SimulatedHomeserver> {
    return new SimulatedHomeserver(await MaliciousHttpsServer.start(ca));
  }

  get name(): string {
    return this.wire.name;
  }

  async join(target: string, roomId: string, localpart = 'loader'): Promise<RoomSender> {
    const room = await this.wire.joinRoom(target, roomId, localpart);
    return new RoomSender(this.wire, room, this.wire.evil.user(localpart));
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
