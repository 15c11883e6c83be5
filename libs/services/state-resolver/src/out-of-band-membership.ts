// Memberships of a local user in a room this server is not in, which only the invite ties us to: the inviter
// rescinding the invite (a leave arriving by /send), and the invitee rejecting it when no server of the room
// serves make_leave. Neither can be checked against room state we do not have; both are kept as outliers and put
// on the room log so the bridge drops the invite.
import type { InboundPdu } from '@fedgate/bus';
import { computeReferenceHash, isUserOf, roomVersionRules, roomVersionsForEventId, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { toRoomEvent } from '@fedgate/room-state';
import type { EventRecord, Store } from '@fedgate/store';
import { finishEvent, type ServerSigner } from './event-builder';
import { logEventOf, recordFor, type RoomTimeline } from './room-timeline';

/** The invite of `userId` into `roomId` we keep as an outlier, when the room is not one we are in. */
export async function storedInvite(store: Store, roomId: string, userId: string): Promise<EventRecord | undefined> {
  const events = await store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: Number.MAX_SAFE_INTEGER, limit: 1000, excludeRejected: true });
  return events
    .filter((e) => e.type === 'm.room.member' && e.stateKey === userId && (e.pdu.content as { membership?: unknown }).membership === 'invite')
    .sort((a, b) => b.receivedTs - a.receivedTs)[0];
}

/** The room version an outlier invite was received under, recovered from its event ID. */
export function inviteRoomVersion(invite: EventRecord): string | undefined {
  return roomVersionsForEventId(invite.pdu as Record<string, unknown>, invite.eventId)[0];
}

export class OutOfBandMembership {
  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly serverName: string,
    /** Needed only to build a local leave. */
    private readonly signer?: ServerSigner,
  ) {}

  /**
   * A leave for a local user with a pending invite, in a room we are not in, sent by the inviting server: the
   * invite is rescinded. Returns undefined when the PDU is no such leave (the caller refuses it as before).
   */
  async rescind(inbound: InboundPdu, pdu: Pdu): Promise<{ eventId: string } | undefined> {
    const stateKey = typeof pdu.state_key === 'string' ? pdu.state_key : undefined;
    if (pdu.type !== 'm.room.member' || !stateKey || !isUserOf(stateKey, this.serverName)) return undefined;
    if ((pdu.content as { membership?: unknown }).membership !== 'leave') return undefined;
    const invite = await storedInvite(this.store, inbound.roomId, stateKey);
    if (!invite || !isUserOf(invite.pdu.sender, inbound.origin) || !isUserOf(pdu.sender, inbound.origin)) return undefined;
    if (await this.store.events.get(inbound.eventId)) return { eventId: inbound.eventId };
    await this.keep(inbound.eventId, inbound.roomId, pdu, { local: false });
    return { eventId: inbound.eventId };
  }

  /**
   * The invitee rejects the invite and no server would take the leave: a leave of our own, built on the invite
   * alone, kept here and never sent. Undefined when there is no pending invite to reject.
   */
  async localLeave(roomId: string, userId: string, content: Record<string, unknown> = {}): Promise<string | undefined> {
    const invite = await storedInvite(this.store, roomId, userId);
    const version = invite && inviteRoomVersion(invite);
    if (!invite || !version || !this.signer) return undefined;
    const rules = roomVersionRules(version);
    const ref = referenceTo(invite, rules);
    const draft: Record<string, unknown> = {
      room_id: roomId,
      type: 'm.room.member',
      state_key: userId,
      sender: userId,
      content: { ...content, membership: 'leave' },
      prev_events: [ref],
      auth_events: [ref],
      depth: invite.depth + 1,
      origin_server_ts: Date.now(),
    };
    if (!rules.creatorIsSender) draft.origin = this.serverName;
    const built = finishEvent(draft, rules, this.signer);
    await this.keep(built.eventId, roomId, built.pdu, { local: false });
    return built.eventId;
  }

  private async keep(eventId: string, roomId: string, pdu: Pdu, options: { local: boolean }): Promise<void> {
    await this.store.events.append(recordFor(eventId, roomId, pdu, toRoomEvent(pdu, eventId), 'accepted', 'out-of-band membership: not checked against room state we do not hold', true));
    await this.timeline.publish({ eventId, roomId, outcome: 'accepted', local: options.local, event: logEventOf(eventId, roomId, pdu), stateDelta: {}, joinedServers: [] });
  }
}

function referenceTo(record: EventRecord, rules: RoomVersionRules): string | [string, { sha256: string }] {
  return rules.eventFormat === 'v1' ? [record.eventId, { sha256: computeReferenceHash(record.pdu, rules) }] : record.eventId;
}
