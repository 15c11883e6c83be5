// Builds a room event by event in the store, with the state before and after each, as state-resolver would
// have persisted it: for read tests that need exact control of history visibility and membership over time.
import type { JsonObject, SigningKey } from '@fedgate/protocol';
import { stateTupleKey, type EventStatus } from '@fedgate/store';
import { INGRESS_NAME, ROOM_VERSION, signedEvent, type IngressHarness } from './ingress-harness';

export interface Signer {
  serverName: string;
  key: SigningKey;
}

export class RoomBuilder {
  readonly creator = `@creator:${INGRESS_NAME}`;
  private readonly state = new Map<string, string>();
  private prev: string[] = [];
  private depth = 1;

  private constructor(
    private readonly h: IngressHarness,
    readonly roomId: string,
  ) {}

  /** A room created by a local user, with a public join rule and the given history visibility. */
  static async create(h: IngressHarness, roomId: string, historyVisibility: string): Promise<RoomBuilder> {
    const room = new RoomBuilder(h, roomId);
    await h.store.rooms.ensure({ roomId, roomVersion: ROOM_VERSION, creator: room.creator, createdTs: Date.now() });
    await room.setState('m.room.create', '', { room_version: ROOM_VERSION });
    await room.setState('m.room.member', room.creator, { membership: 'join' });
    await room.setState('m.room.join_rules', '', { join_rule: 'public' });
    await room.setState('m.room.history_visibility', '', { history_visibility: historyVisibility });
    await h.store.rooms.setJoinedServers(roomId, [INGRESS_NAME]);
    return room;
  }

  get localSigner(): Signer {
    return { serverName: INGRESS_NAME, key: this.h.identity.signingKey };
  }

  /** The current state's event IDs. */
  stateIds(): string[] {
    return [...this.state.values()];
  }

  setState(type: string, stateKey: string, content: JsonObject, sender = this.creator, signer = this.localSigner): Promise<string> {
    return this.append({ type, state_key: stateKey, sender, content }, signer);
  }

  message(body: string, sender = this.creator, signer = this.localSigner): Promise<string> {
    return this.append({ type: 'm.room.message', sender, content: { msgtype: 'm.text', body } }, signer);
  }

  /** A message with the given `origin_server_ts`. */
  messageAt(body: string, ts: number, sender = this.creator): Promise<string> {
    return this.append({ type: 'm.room.message', sender, origin_server_ts: ts, content: { msgtype: 'm.text', body } }, this.localSigner);
  }

  /** Sets a membership and keeps the room's joined servers in step. */
  async member(userId: string, membership: string, signer: Signer = this.localSigner, sender = membership === 'join' || membership === 'leave' ? userId : this.creator): Promise<string> {
    const id = await this.setState('m.room.member', userId, { membership }, sender, signer);
    const server = userId.slice(userId.indexOf(':') + 1);
    await this.h.store.rooms.updateJoinedServers(this.roomId, membership === 'join' ? { add: [server], remove: [] } : { add: [], remove: membership === 'invite' ? [] : [server] });
    return id;
  }

  /**
   * An event stored with the given outcome and recorded state, without touching the room's timeline: what a
   * lying peer's event looks like once state-resolver has judged it.
   */
  async stray(fields: JsonObject, signer: Signer, status: EventStatus, stateBefore: Map<string, string>): Promise<string> {
    const { eventId, pdu } = signedEvent({ room_id: this.roomId, depth: this.depth, ...fields }, signer.serverName, signer.key);
    const snapshot = await this.h.store.state.save(this.roomId, stateBefore);
    await this.h.store.events.append({
      eventId,
      roomId: this.roomId,
      type: fields.type as string,
      depth: this.depth,
      prevEventIds: pdu.prev_events as string[],
      authEventIds: pdu.auth_events as string[],
      pdu: pdu as never,
      status,
      ...(status === 'rejected' ? { reason: 'test: judged rejected' } : {}),
      outlier: false,
      receivedTs: Date.now(),
    });
    await this.h.store.state.setForEvent(eventId, { before: snapshot, after: snapshot });
    return eventId;
  }

  /** A copy of the current state map (tuple key → event ID). */
  snapshot(): Map<string, string> {
    return new Map(this.state);
  }

  private async append(fields: JsonObject, signer: Signer): Promise<string> {
    const { h, roomId, state } = this;
    const { eventId, pdu } = signedEvent({ room_id: roomId, depth: this.depth, prev_events: this.prev, auth_events: [...state.values()].slice(0, 10), ...fields }, signer.serverName, signer.key);
    const before = await h.store.state.save(roomId, new Map(state));
    if (typeof fields.state_key === 'string') state.set(stateTupleKey(fields.type as string, fields.state_key), eventId);
    const after = await h.store.state.save(roomId, new Map(state));
    await h.store.events.append({
      eventId,
      roomId,
      type: fields.type as string,
      ...(typeof fields.state_key === 'string' ? { stateKey: fields.state_key } : {}),
      depth: this.depth,
      prevEventIds: this.prev,
      authEventIds: pdu.auth_events as string[],
      pdu: pdu as never,
      status: 'accepted',
      outlier: false,
      receivedTs: Date.now(),
    });
    await h.store.state.setForEvent(eventId, { before, after });
    await h.store.rooms.setCurrentState(roomId, after);
    await h.store.rooms.updateForwardExtremities(roomId, { add: [eventId], remove: this.prev });
    this.prev = [eventId];
    this.depth++;
    return eventId;
  }
}
