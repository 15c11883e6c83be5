// Reads around one point of a room's history: `/context/{eventId}` and `timestamp_to_event` ("jump to date").
// Both serve only what history visibility lets the requesting user see, and answer 404 alike for an event
// that is not there and one the user may not see.
import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError, parseTimestampQuery } from '@fedgate/service-kit';
import { EventVisibility, originTs, timestampLookup, type EventRecord } from '@fedgate/store';
import { RemoteTimestamps } from '../rooms/remote-timestamp';
import { RoomVisibility } from '../lifecycle/room-visibility';
import { RoomView } from '../rooms/room-view';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';
import { filterMatches, parseRoomEventFilter } from './room-event-filter';

const MAX_CONTEXT_LIMIT = 100;
/** Events looked at per direction at most, however few of them the filter lets through. */
const MAX_CONTEXT_SCANNED = 1_000;
const DEPTH_WINDOW = 50;

@Controller()
@UseGuards(AppServiceAuthGuard)
export class RoomHistoryController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly view: RoomView,
    private readonly visibility: RoomVisibility,
    private readonly remote: RemoteTimestamps,
  ) {}

  @Get(CLIENT_PATHS.map((prefix) => `${prefix}/rooms/:roomId/context/:eventId`))
  async context(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('eventId') eventId: string, @Query() query: Record<string, unknown>) {
    await this.visibility.readableState(requester, roomId, { whenLeft: false });
    const limit = query.limit === undefined ? 10 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 0) throw MatrixError.invalidParam('limit must be a non-negative integer');
    const filter = parseRoomEventFilter(query.filter);
    const capped = Math.min(limit, filter.limit ?? MAX_CONTEXT_LIMIT, MAX_CONTEXT_LIMIT);
    const visibility = new EventVisibility(this.store, { userId: requester.userId });
    const record = await this.view.event(eventId);
    if (!record || record.roomId !== roomId || record.status !== 'accepted' || record.outlier || !(await visibility.mayView(record))) {
      throw MatrixError.notFound('Event not found or not visible to you.');
    }
    // The filter applies to what surrounds the event, never to the event itself.
    const wanted = async (r: EventRecord) => {
      if (r.status !== 'accepted' || r.outlier || r.eventId === eventId || !(await visibility.mayView(r))) return false;
      // `contains_url` judges the content as it will be served: a redacted or erased event shows none.
      const hidden = filter.containsUrl !== undefined && (r.redactedBy !== undefined || (await visibility.erasedFor(r)));
      return filterMatches(filter, hidden ? { ...r.pdu, content: {} } : r.pdu);
    };
    const beforeLimit = Math.floor(capped / 2);
    const before = await this.around(roomId, record.depth, 'b', beforeLimit, wanted);
    const after = await this.around(roomId, record.depth, 'f', capped - beforeLimit, wanted);
    const last = after.events.length ? after.events[after.events.length - 1] : record;
    const stateIds = await this.store.state.stateAfterEvent(last.eventId);
    const senders = new Set([record, ...before.events, ...after.events].map((r) => r.pdu.sender));
    const state = (stateIds ? [...(await this.store.events.getMany([...stateIds.values()])).values()] : []).filter(
      (r) => filterMatches(filter, r.pdu) && !(filter.lazyLoadMembers && r.type === 'm.room.member' && !senders.has(r.stateKey ?? '')),
    );
    return {
      start: `d${Math.max(0, before.reached - 1)}`,
      end: `d${after.reached + 1}`,
      event: (await this.view.clientEventsFor(visibility, [record]))[0],
      events_before: await this.view.clientEventsFor(visibility, before.events),
      events_after: await this.view.clientEventsFor(visibility, after.events),
      state: await this.view.clientEvents(state),
    };
  }

  /**
   * Up to `limit` events the filter and history visibility let through, walking away from `depth` (`b`: deeper
   * first, `f`: shallower first) a window of depths at a time, looking at no more than MAX_CONTEXT_SCANNED events.
   * `reached`: the depth of the last event looked at (the page tokens continue from there).
   */
  private async around(roomId: string, depth: number, dir: 'b' | 'f', limit: number, wanted: (r: EventRecord) => Promise<boolean>) {
    const events: EventRecord[] = [];
    let reached = depth;
    let scanned = 0;
    let next = dir === 'b' ? depth - 1 : depth + 1;
    while (events.length < limit && scanned < MAX_CONTEXT_SCANNED && next >= 0) {
      const [minDepth, maxDepth] = dir === 'b' ? [Math.max(0, next - DEPTH_WINDOW + 1), next] : [next, next + DEPTH_WINDOW - 1];
      // Depths are contiguous (each event is one deeper than its deepest prev event), so an empty window past
      // the event means the end of the room's timeline going forward.
      const page = await this.store.events.byDepthRange({ roomId, minDepth, maxDepth, limit: 50 * DEPTH_WINDOW, excludeRejected: true });
      if (page.length === 0 && dir === 'f') break;
      for (const r of dir === 'b' ? page : page.reverse()) {
        scanned++;
        reached = r.depth;
        if (await wanted(r)) events.push(r);
        if (events.length >= limit || scanned >= MAX_CONTEXT_SCANNED) break;
      }
      next = dir === 'b' ? minDepth - 1 : maxDepth + 1;
    }
    return { events, reached };
  }

  @Get(['_matrix/client/v1/rooms/:roomId/timestamp_to_event', '_matrix/client/unstable/org.matrix.msc3030/rooms/:roomId/timestamp_to_event'])
  async timestampToEvent(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Query() query: Record<string, unknown>) {
    const { ts, dir } = parseTimestampQuery(query);
    await this.visibility.readableState(requester, roomId, { whenLeft: false });
    const visibility = new EventVisibility(this.store, { userId: requester.userId });
    const mayView = (r: EventRecord) => visibility.mayView(r);
    const local = await timestampLookup(this.store, { roomId, ts, dir, mayView });
    let found = local.found;
    // History held here stops short of the room's start: a closer event may be before it (going back: only when
    // nothing was found; going forward: when what was found is the oldest held).
    const bordersGap = !local.reachesCreate && (found === undefined || (dir === 'f' && found.depth <= local.oldestDepth));
    if (bordersGap) {
      const answer = await this.remote.closerAnswer(roomId, ts, dir, found && originTs(found));
      const fetched = answer && (await this.remote.fetch(roomId, answer, local.oldestDepth));
      if (fetched && fetched.status === 'accepted' && !fetched.outlier && (await mayView(fetched))) found = fetched;
    }
    if (!found) throw MatrixError.notFound(`Unable to find event from ${ts} in direction ${dir}`);
    return { event_id: found.eventId, origin_server_ts: originTs(found) };
  }
}
