// Looks up the facts history visibility needs for stored events (the room state before and after each, the
// viewer's memberships in it) and lets @fedgate/room-state decide. One instance per read: it caches per room.
import { domainOf, historyVisibilityOf, mayViewEvent, type VisibilityState } from '@fedgate/room-state';
import type { EventRecord } from '../ports/events';
import { parseStateTupleKey, stateTupleKey, type StateMap } from '../ports/state';
import type { Store } from '../ports/store';

export type EventVerdict = 'visible' | 'not_visible' | 'state_unknown';

/** Who reads: a user (client-server reads) or a server (federation reads, on behalf of all its users). */
export type Viewer = { userId: string } | { serverName: string };

const MEMBER = 'm.room.member';
const MEMBER_KEY_PREFIX = stateTupleKey(MEMBER, '').slice(0, -3);
const HISTORY_VISIBILITY = stateTupleKey('m.room.history_visibility', '');

export class EventVisibility {
  private readonly inRoom = new Map<string, Promise<boolean>>();
  private readonly erasedSenders = new Map<string, Promise<boolean>>();

  constructor(
    private readonly store: Store,
    private readonly viewer: Viewer,
  ) {}

  get viewerName(): string {
    return 'serverName' in this.viewer ? this.viewer.serverName : this.viewer.userId;
  }

  /** Whether the viewer may see the event. An event with no known state (an outlier) counts as `shared`. */
  async mayView(record: EventRecord): Promise<boolean> {
    return (await this.judge(record.eventId, record.roomId, 'as-shared')) === 'visible';
  }

  /**
   * Whether the event may be sent to the viewer (egress catch-up): as `mayView`, but an event whose state
   * is not known is not judged (`state_unknown`, withheld by the caller).
   */
  async sendable(eventId: string, roomId: string): Promise<EventVerdict> {
    return this.judge(eventId, roomId, 'unknown');
  }

  private async judge(eventId: string, roomId: string, unknownState: 'as-shared' | 'unknown'): Promise<EventVerdict> {
    const [before, after, inRoomNow] = await Promise.all([
      this.store.state.stateBeforeEvent(eventId),
      this.store.state.stateAfterEvent(eventId),
      this.inRoomNow(roomId),
    ]);
    if (unknownState === 'unknown' && (!before || !after)) return 'state_unknown';
    const beforeFacts = await this.factsIn(before);
    const afterFacts = after === undefined ? beforeFacts : await this.factsIn(after);
    return mayViewEvent({ before: beforeFacts, after: afterFacts, inRoomNow }) ? 'visible' : 'not_visible';
  }

  /**
   * Whether the event is to be served redacted because its sender, a local user, was deactivated with erasure:
   * so it is for every viewer who was not joined at the event (client-server: the user; federation: any user of
   * the server), while those who were keep seeing it whole. Applies to events the viewer may see at all.
   */
  async erasedFor(record: EventRecord): Promise<boolean> {
    const sender = (record.pdu as { sender?: unknown }).sender;
    if (typeof sender !== 'string' || !(await this.senderErased(sender))) return false;
    const [before, after] = await Promise.all([this.store.state.stateBeforeEvent(record.eventId), this.store.state.stateAfterEvent(record.eventId)]);
    const joined = [...(await this.factsIn(before)).memberships, ...(await this.factsIn(after)).memberships].includes('join');
    return !joined;
  }

  private senderErased(sender: string): Promise<boolean> {
    let known = this.erasedSenders.get(sender);
    if (!known) {
      known = this.store.chatLifecycle.getDeactivated(sender).then((record) => record?.erased === true);
      this.erasedSenders.set(sender, known);
    }
    return known;
  }

  /** The viewer is in the room now: a joined user; a server with a joined user. */
  inRoomNow(roomId: string): Promise<boolean> {
    let known = this.inRoom.get(roomId);
    if (!known) {
      known = this.lookUpInRoomNow(roomId);
      this.inRoom.set(roomId, known);
    }
    return known;
  }

  private async lookUpInRoomNow(roomId: string): Promise<boolean> {
    if ('serverName' in this.viewer) return (await this.store.rooms.getJoinedServers(roomId)).includes(this.viewer.serverName);
    const room = await this.store.rooms.get(roomId);
    const state = room?.currentStateId ? await this.store.state.load(room.currentStateId) : undefined;
    return (await this.factsIn(state)).memberships.includes('join');
  }

  private async factsIn(state: StateMap | undefined): Promise<VisibilityState> {
    if (!state) return { visibility: 'shared', memberships: [] };
    const ids: string[] = [];
    const visibilityId = state.get(HISTORY_VISIBILITY);
    if (visibilityId) ids.push(visibilityId);
    const memberIds = this.viewerMemberIds(state);
    ids.push(...memberIds);
    const records = await this.store.events.getMany(ids);
    const memberships: string[] = [];
    for (const id of memberIds) {
      const membership = (records.get(id)?.pdu.content as { membership?: unknown } | undefined)?.membership;
      if (typeof membership === 'string') memberships.push(membership);
    }
    return { visibility: historyVisibilityOf(visibilityId ? records.get(visibilityId)?.pdu.content : undefined), memberships };
  }

  private viewerMemberIds(state: StateMap): string[] {
    if ('userId' in this.viewer) {
      const id = state.get(stateTupleKey(MEMBER, this.viewer.userId));
      return id ? [id] : [];
    }
    const ids: string[] = [];
    for (const [key, id] of state) {
      if (!key.startsWith(MEMBER_KEY_PREFIX)) continue;
      const { type, stateKey } = parseStateTupleKey(key);
      if (type === MEMBER && domainOf(stateKey) === this.viewer.serverName) ids.push(id);
    }
    return ids;
  }
}
