// What a remote server's invite of one of our users must pass before it is countersigned (issue 18):
// the invitee is a user this server has or an application service claims; the inviting server stays
// within its invite budget; when a local user is joined to the room, the invite is authorised against
// the room's current state as we hold it (a server outside the room cannot rewrite a member's
// membership); and `invite_room_state` is checked and pruned to stripped state as spec v1.16 says.
import { verifyRemoteEvents, type KeyRing } from '@fedgate/federation-client';
import type { Pdu, RoomVersionRules } from '@fedgate/protocol';
import { authorizeEvent, authStateFromMap, createEventIdForRoom, domainOf, isObject, stateMapKey } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { CommandRefusal, forbidden } from './errors';
import { EventGraph } from './event-graph';
import type { RoomTimeline } from './room-timeline';
import { InviteRateLimit } from './invite-rate-limit';

/** At most this many entries of `invite_room_state` are looked at and passed on. */
export const MAX_INVITE_ROOM_STATE = 50;
/** A stripped entry (older servers) larger than a PDU may be is dropped. */
const MAX_STRIPPED_BYTES = 65_536;

/** A stripped state event: the only fields passed on to the application service. */
export interface StrippedStateEvent {
  type: string;
  state_key: string;
  sender: string;
  content: Record<string, unknown>;
  [key: string]: unknown;
}

const invalidParam = (message: string) => new CommandRefusal('M_INVALID_PARAM', message, 400);

export class InviteChecks {
  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly keyRing: KeyRing,
    private readonly serverName: string,
    private readonly rateLimit = new InviteRateLimit(),
  ) {}

  /** Throws the refusal; returns the stripped state to pass on. */
  async check(origin: string, pdu: Pdu, eventId: string, rules: RoomVersionRules, rawRoomState: unknown): Promise<StrippedStateEvent[]> {
    const invitee = pdu.state_key as string;
    await this.assertKnownUser(invitee);
    const retryAfterMs = this.rateLimit.take(origin);
    if (retryAfterMs !== undefined) {
      throw new CommandRefusal('M_LIMIT_EXCEEDED', `too many invites from ${origin}; retry in ${retryAfterMs} ms`, 429, { retry_after_ms: retryAfterMs });
    }
    await this.authorizeWhenJoined(pdu, eventId, rules);
    return this.inviteRoomState(pdu.room_id as string, rules, rawRoomState);
  }

  /** A user we have (registered, or deactivated), or one an application service's namespace covers. */
  private async assertKnownUser(userId: string): Promise<void> {
    if (await this.store.profiles.get(userId)) return;
    const localpart = userId.slice(1, userId.indexOf(':'));
    for (const registration of await this.store.appServices.list()) {
      if (registration.senderLocalpart === localpart) return;
      if (registration.namespaces.users.some((rule) => namespaceRegex(rule.regex).test(userId))) return;
    }
    throw new CommandRefusal('M_NOT_FOUND', `${userId} is not a user of ${this.serverName}`, 404);
  }

  /** When a local user is joined, we hold the room's state: the invite must pass the auth rules against it. */
  private async authorizeWhenJoined(pdu: Pdu, eventId: string, rules: RoomVersionRules): Promise<void> {
    const roomId = pdu.room_id as string;
    if (!(await this.store.rooms.get(roomId))) return;
    const current = await this.timeline.currentState(roomId);
    if (!current) return;
    const graph = new EventGraph(this.store);
    const memberIds = [...current].filter(([key]) => key.startsWith('m.room.member\u0000') && domainOf(key.slice('m.room.member\u0000'.length)) === this.serverName).map(([, id]) => id);
    await graph.load(memberIds);
    const weAreJoined = memberIds.some((id) => graph.lookup(id)?.content.membership === 'join');
    if (!weAreJoined) return;
    const token = (pdu.content.third_party_invite as { signed?: { token?: unknown } } | undefined)?.signed?.token;
    const authKeys = [stateMapKey('m.room.create', ''), stateMapKey('m.room.power_levels', ''), stateMapKey('m.room.join_rules', ''), ...(typeof token === 'string' ? [stateMapKey('m.room.third_party_invite', token)] : [])];
    const authIds = [...current].filter(([key]) => key.startsWith('m.room.member\u0000') || authKeys.includes(key)).map(([, id]) => id);
    await graph.load(authIds);
    const event = graph.add(eventId, pdu);
    const verdict = authorizeEvent(event, authStateFromMap(current, graph.lookup, roomId), rules);
    if (!verdict.allowed) throw forbidden(`the invite is not allowed by the room's current state: ${verdict.reason.message}`);
  }

  /**
   * Spec v1.16: the create event must be there; entries must be PDUs of the room's version, signed, in the
   * room. Room versions before 12 may still send stripped state (older servers): there, entries that fail
   * are dropped; from version 12 on the invite is refused with M_INVALID_PARAM. Either way only stripped
   * fields of at most MAX_INVITE_ROOM_STATE entries are passed on.
   */
  private async inviteRoomState(roomId: string, rules: RoomVersionRules, raw: unknown): Promise<StrippedStateEvent[]> {
    const strict = rules.roomIdFromCreateEvent;
    const entries = Array.isArray(raw) ? raw : [];
    if (entries.length > MAX_INVITE_ROOM_STATE && strict) throw invalidParam(`invite_room_state has ${entries.length} entries; at most ${MAX_INVITE_ROOM_STATE} are accepted`);
    const considered = entries.slice(0, MAX_INVITE_ROOM_STATE);
    const pduShaped = considered.map((entry) => isObject(entry) && 'signatures' in entry && 'hashes' in entry);
    let results: Awaited<ReturnType<typeof verifyRemoteEvents>> = [];
    const pdus = considered.filter((_, i) => pduShaped[i]);
    if (pdus.length > 0) {
      try {
        results = await verifyRemoteEvents(this.keyRing, pdus, { roomVersion: rules, roomId });
      } catch (err) {
        if (strict) throw invalidParam(`could not check the signatures of invite_room_state: ${(err as Error).message}`);
        results = pdus.map(() => ({ ok: false as const, problem: 'signature' as const, errcode: 'M_FORBIDDEN', reason: 'keys unavailable' }));
      }
    }
    const kept: StrippedStateEvent[] = [];
    let pduIndex = 0;
    let create = false;
    for (const [index, entry] of considered.entries()) {
      if (pduShaped[index]) {
        const result = results[pduIndex++];
        if (!result.ok) {
          if (strict) throw invalidParam(`invite_room_state entry ${index}: ${result.reason}`);
          continue;
        }
        const isCreate = result.pdu.type === 'm.room.create' && result.pdu.state_key === '';
        // A version 12 room ID is its create event's ID: a create event of another room is refused.
        if (isCreate && rules.roomIdFromCreateEvent && createEventIdForRoom(roomId) !== result.eventId) {
          if (strict) throw invalidParam(`invite_room_state entry ${index} is the create event of another room`);
          continue;
        }
        create ||= isCreate;
        const stripped = strippedOf(result.pdu);
        if (stripped) kept.push(stripped);
        continue;
      }
      if (strict) throw invalidParam(`invite_room_state entry ${index} is not an event of room version ${rules.id}`);
      const stripped = strippedOf(entry);
      if (stripped && JSON.stringify(stripped).length <= MAX_STRIPPED_BYTES) kept.push(stripped);
    }
    if (strict && !create) throw invalidParam('invite_room_state lacks the m.room.create event');
    return kept;
  }
}

/** The four stripped-state fields, when the entry has them with the right types. */
function strippedOf(entry: unknown): StrippedStateEvent | undefined {
  if (!isObject(entry)) return undefined;
  const { type, state_key: stateKey, sender, content } = entry;
  if (typeof type !== 'string' || typeof stateKey !== 'string' || typeof sender !== 'string' || !isObject(content)) return undefined;
  return { type, state_key: stateKey, sender, content };
}

/** Registration regexes as chat-sync reads them: the whole ID, Python's named groups. */
function namespaceRegex(regex: string): RegExp {
  try {
    return new RegExp(`^(?:${regex.replace(/\(\?P</g, '(?<')})$`);
  } catch {
    return /(?!)/;
  }
}
