// What chat-sync reads about a room: its current state, memberships, events in client format.
import { Inject, Injectable } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { redactEvent, type Pdu } from '@fedgate/protocol';
import { parseStateTupleKey, pduWithRedaction, stateTupleKey, type EventRecord, type EventVisibility, type RoomRecord } from '@fedgate/store';
import { toClientEvent, type ClientEvent } from './client-event';

export interface CurrentState {
  room: RoomRecord;
  /** State tuple key → event. */
  events: Map<string, EventRecord>;
}

@Injectable()
export class RoomView {
  constructor(@Inject(STORE) private readonly store: Store) {}

  async room(roomId: string): Promise<RoomRecord | undefined> {
    return this.store.rooms.get(roomId);
  }

  async currentState(roomId: string): Promise<CurrentState | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    const state = await this.store.state.load(room.currentStateId);
    if (!state) return undefined;
    const records = await this.store.events.getMany([...state.values()]);
    const events = new Map<string, EventRecord>();
    for (const [key, eventId] of state) {
      const record = records.get(eventId);
      if (record) events.set(key, record);
    }
    return { room, events };
  }

  /** One event of current state: the state map is read, and only that event (not every member of a big room). */
  async stateEvent(roomId: string, type: string, stateKey: string): Promise<EventRecord | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    const eventId = (await this.store.state.load(room.currentStateId))?.get(stateTupleKey(type, stateKey));
    return eventId === undefined ? undefined : this.store.events.get(eventId);
  }

  async membership(roomId: string, userId: string): Promise<string | undefined> {
    const member = await this.stateEvent(roomId, 'm.room.member', userId);
    const membership = (member?.pdu.content as { membership?: unknown } | undefined)?.membership;
    return typeof membership === 'string' ? membership : undefined;
  }

  /** Members by membership, from current state. */
  static members(state: CurrentState, membership?: string): EventRecord[] {
    const members: EventRecord[] = [];
    for (const [key, record] of state.events) {
      if (parseStateTupleKey(key).type !== 'm.room.member') continue;
      if (membership === undefined || (record.pdu.content as { membership?: unknown }).membership === membership) members.push(record);
    }
    return members;
  }

  async joinedMembers(roomId: string): Promise<string[]> {
    const state = await this.currentState(roomId);
    if (!state) return [];
    return RoomView.members(state, 'join').map((record) => record.stateKey ?? '');
  }

  async event(eventId: string): Promise<EventRecord | undefined> {
    return this.store.events.get(eventId);
  }

  clientEvent(record: EventRecord): ClientEvent {
    return toClientEvent(record.pdu, record.eventId, record.roomId);
  }

  /**
   * Events in client format as the client-server API serves them: a redacted event in its redacted form with
   * the redaction in `unsigned.redacted_because` (client-server "Redactions").
   */
  async clientEvents(records: readonly EventRecord[]): Promise<ClientEvent[]> {
    const redacted = records.filter((r) => r.redactedBy !== undefined);
    if (redacted.length === 0) return records.map((r) => this.clientEvent(r));
    const redactions = await this.store.events.getMany([...new Set(redacted.map((r) => r.redactedBy!))]);
    const versions = new Map<string, string | undefined>();
    for (const roomId of new Set(redacted.map((r) => r.roomId))) versions.set(roomId, (await this.store.rooms.get(roomId))?.roomVersion);
    return records.map((record) => {
      if (record.redactedBy === undefined) return this.clientEvent(record);
      const event = toClientEvent(pduWithRedaction(record, versions.get(record.roomId)), record.eventId, record.roomId);
      const redaction = redactions.get(record.redactedBy);
      event.unsigned = { ...event.unsigned, redacted_because: redaction ? this.clientEvent(redaction) : { event_id: record.redactedBy } };
      return event;
    });
  }

  async servedEvent(record: EventRecord): Promise<ClientEvent> {
    return (await this.clientEvents([record]))[0];
  }

  /**
   * `clientEvents` for one reader: an event whose sender was deactivated with erasure is served in its redacted
   * form to a reader who was not joined at the event (see `EventVisibility.erasedFor`).
   */
  async clientEventsFor(visibility: EventVisibility, records: readonly EventRecord[]): Promise<ClientEvent[]> {
    const served = await this.clientEvents(records);
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      if (record.redactedBy !== undefined || !(await visibility.erasedFor(record))) continue;
      const roomVersion = (await this.store.rooms.get(record.roomId))?.roomVersion ?? '1';
      served[i] = toClientEvent(redactEvent(record.pdu, roomVersion) as Pdu, record.eventId, record.roomId);
    }
    return served;
  }
}
