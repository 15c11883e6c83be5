// Builds this server's events: references to the forward extremities, auth events chosen from the
// current state, depth, timestamp, hashes and signature.
import { randomBytes } from 'node:crypto';
import {
  computeEventId,
  computeReferenceHash,
  generateServerEventId,
  signEvent,
  type Pdu,
  type RoomVersionRules,
  type SigningKey,
} from '@fedgate/protocol';
import { authTypesForEvent, stateMapKey } from '@fedgate/room-state';
import type { EventRecord, Store } from '@fedgate/store';

/** The spec's limit on prev_events; the newest extremities are referenced when there are more. */
export const MAX_PREV_EVENTS = 20;

export interface EventDraft {
  roomId: string;
  sender: string;
  type: string;
  stateKey?: string;
  content: Record<string, unknown>;
}

export interface ServerSigner {
  serverName: string;
  signingKey: SigningKey;
}

export interface BuiltEvent {
  eventId: string;
  pdu: Pdu;
}

/** A reference to another event in the room version's format. */
function reference(record: EventRecord, rules: RoomVersionRules): string | [string, { sha256: string }] {
  if (rules.eventFormat !== 'v1') return record.eventId;
  return [record.eventId, { sha256: computeReferenceHash(record.pdu, rules) }];
}

/** Signs a complete unsigned event (v1–2: with a fresh event_id) and computes its ID. */
export function finishEvent(unsigned: Record<string, unknown>, rules: RoomVersionRules, signer: ServerSigner): BuiltEvent {
  const body: Record<string, unknown> = { ...unsigned };
  if (rules.eventFormat === 'v1' && typeof body.event_id !== 'string') body.event_id = generateServerEventId(signer.serverName, randomBytes(18));
  delete body.hashes;
  delete body.signatures;
  delete body.unsigned;
  const signed = signEvent(body, rules, signer.serverName, signer.signingKey) as unknown as Pdu;
  return { eventId: computeEventId(signed, rules), pdu: signed };
}

export class EventBuilder {
  constructor(
    private readonly store: Store,
    private readonly signer: ServerSigner,
  ) {}

  /** The unsigned event on top of the room's forward extremities, auth events from `state` (the current state). */
  async template(draft: EventDraft, rules: RoomVersionRules, state: Map<string, string>, now = Date.now()): Promise<Record<string, unknown>> {
    const extremities = await this.store.rooms.getForwardExtremities(draft.roomId);
    const prevRecords = [...(await this.store.events.getMany(extremities)).values()]
      .sort((a, b) => b.depth - a.depth || (a.eventId < b.eventId ? -1 : 1))
      .slice(0, MAX_PREV_EVENTS);
    const authIds = [
      ...new Set(
        authTypesForEvent({ type: draft.type, sender: draft.sender, state_key: draft.stateKey, content: draft.content as never }, rules)
          .map((r) => state.get(stateMapKey(r.type, r.state_key)))
          .filter((id): id is string => id !== undefined),
      ),
    ];
    const authRecords = await this.store.events.getMany(authIds);
    const depth = Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, ...prevRecords.map((r) => r.depth)) + 1);
    const event: Record<string, unknown> = {
      room_id: draft.roomId,
      sender: draft.sender,
      type: draft.type,
      content: draft.content,
      prev_events: prevRecords.map((r) => reference(r, rules)),
      auth_events: authIds.filter((id) => authRecords.has(id)).map((id) => reference(authRecords.get(id)!, rules)),
      depth,
      origin_server_ts: now,
    };
    if (!rules.creatorIsSender) event.origin = this.signer.serverName;
    if (draft.stateKey !== undefined) event.state_key = draft.stateKey;
    if (draft.type === 'm.room.redaction' && !rules.redactsInContent && typeof draft.content.redacts === 'string') event.redacts = draft.content.redacts;
    return event;
  }

  async build(draft: EventDraft, rules: RoomVersionRules, state: Map<string, string>): Promise<BuiltEvent> {
    return finishEvent(await this.template(draft, rules, state), rules, this.signer);
  }

  /** A room's create event: no prev or auth events, depth 1; v12 has no room_id (the ID is derived from it). */
  buildCreate(sender: string, content: Record<string, unknown>, rules: RoomVersionRules, roomId: string | undefined): BuiltEvent {
    const event: Record<string, unknown> = {
      sender,
      type: 'm.room.create',
      state_key: '',
      content,
      prev_events: [],
      auth_events: [],
      depth: 1,
      origin_server_ts: Date.now(),
    };
    if (!rules.roomIdFromCreateEvent) event.room_id = roomId;
    if (!rules.creatorIsSender) event.origin = this.signer.serverName;
    return finishEvent(event, rules, this.signer);
  }
}
