// A stand-in for state-resolver's createEvent command in chat-sync's tests until the real module is
// wired: builds unsigned events, keeps state and extremities in the store, publishes to the room log.
// Auth is only "the sender must be joined" (and the creator may join), enough to see refusals pass through.
import { randomBytes } from 'node:crypto';
import type { Bus, BusSubscription, BusTopology, CreateEventCommand, CreateEventReply } from '@fedgate/bus';
import type { Pdu } from '@fedgate/protocol';
import { stateTupleKey, type Store } from '@fedgate/store';

export class FakeRoomService {
  private readonly transactions = new Map<string, string>();
  private subscription: BusSubscription | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly serverName: string,
  ) {}

  async start(): Promise<void> {
    this.subscription = await this.bus.serve(this.topology.createEvent.command, (command) => {
      const next = this.chain.then(() => this.create(command));
      this.chain = next.catch(() => undefined);
      return next;
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }

  private async create(command: CreateEventCommand): Promise<CreateEventReply & { roomId?: string }> {
    const key = command.txnId === undefined ? undefined : `${command.sender}\u0000${command.txnId}`;
    if (key && this.transactions.has(key)) return { ok: true, eventId: this.transactions.get(key)!, roomId: command.roomId };
    const isCreate = command.type === 'm.room.create';
    const roomId = command.roomId;
    const room = await this.store.rooms.get(roomId);
    if (!isCreate && !room?.currentStateId) return { ok: false, errcode: 'M_NOT_FOUND', error: `room ${roomId} is not known here` };
    const state = room?.currentStateId ? ((await this.store.state.load(room.currentStateId)) ?? new Map()) : new Map<string, string>();
    if (!isCreate) {
      const member = state.get(stateTupleKey('m.room.member', command.sender));
      const membership = member ? (await this.store.events.get(member))?.pdu.content.membership : undefined;
      const joining = command.type === 'm.room.member' && command.stateKey === command.sender && command.content.membership === 'join';
      if (membership !== 'join' && !(joining && (membership === 'invite' || state.size <= 2))) {
        return { ok: false, errcode: 'M_FORBIDDEN', error: `${command.sender} is not in room ${roomId}` };
      }
    }
    const prevEvents = isCreate ? [] : await this.store.rooms.getForwardExtremities(roomId);
    const prev = await this.store.events.getMany(prevEvents);
    const depth = Math.max(0, ...[...prev.values()].map((e) => e.depth)) + 1;
    const eventId = `$${randomBytes(16).toString('base64url')}`;
    const pdu: Pdu = {
      event_id: eventId,
      room_id: roomId,
      sender: command.sender,
      origin: this.serverName,
      origin_server_ts: Date.now(),
      type: command.type,
      ...(command.stateKey !== undefined ? { state_key: command.stateKey } : {}),
      content: command.content as Pdu['content'],
      prev_events: prevEvents,
      auth_events: [],
      depth,
      hashes: { sha256: '' },
      signatures: {},
    };
    if (isCreate) await this.store.rooms.ensure({ roomId, roomVersion: String(command.content.room_version ?? '10'), creator: command.sender, createdTs: Date.now() });
    await this.store.events.append({
      eventId,
      roomId,
      type: command.type,
      stateKey: command.stateKey,
      depth,
      prevEventIds: prevEvents,
      authEventIds: [],
      pdu,
      status: 'accepted',
      outlier: false,
      receivedTs: Date.now(),
    });
    const stateDelta: Record<string, string | null> = {};
    let snapshot = room?.currentStateId ?? null;
    if (command.stateKey !== undefined) {
      snapshot = await this.store.state.derive(roomId, room?.currentStateId ?? null, [{ type: command.type, stateKey: command.stateKey, eventId }]);
      stateDelta[`${command.type}\u0000${command.stateKey}`] = eventId;
    }
    if (snapshot) await this.store.rooms.setCurrentState(roomId, snapshot);
    await this.store.rooms.updateForwardExtremities(roomId, { add: [eventId], remove: prevEvents });
    await this.store.rooms.updateJoinedServers(roomId, { add: [this.serverName], remove: [] });
    await this.bus.publish(
      this.topology.roomLog.subjectFor(roomId),
      { eventId, roomId, outcome: 'accepted', local: true, event: pdu as never, stateDelta, joinedServers: [this.serverName] },
      { messageId: eventId },
    );
    if (key) this.transactions.set(key, eventId);
    return { ok: true, eventId, roomId };
  }
}
