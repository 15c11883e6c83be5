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

const MAX_CONTEXT_LIMIT = 100;

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
    if (query.filter !== undefined) parseFilter(query.filter);
    const capped = Math.min(limit, MAX_CONTEXT_LIMIT);
    const visibility = new EventVisibility(this.store, { userId: requester.userId });
    const record = await this.view.event(eventId);
    if (!record || record.roomId !== roomId || record.status !== 'accepted' || record.outlier || !(await visibility.mayView(record))) {
      throw MatrixError.notFound('Event not found or not visible to you.');
    }
    const beforeLimit = Math.floor(capped / 2);
    // Depths are contiguous (each event is one deeper than its deepest prev event), so the next `afterLimit`
    // timeline events lie within `afterLimit` depths of this one.
    const afterLimit = capped - beforeLimit;
    const timeline = (r: EventRecord) => r.status === 'accepted' && !r.outlier && r.eventId !== eventId;
    const before = (await this.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: record.depth - 1, limit: beforeLimit, excludeRejected: true })).filter(timeline);
    const after = (await this.store.events.byDepthRange({ roomId, minDepth: record.depth + 1, maxDepth: record.depth + afterLimit, limit: 50 * afterLimit + 50, excludeRejected: true }))
      .reverse()
      .slice(0, afterLimit)
      .filter(timeline);
    const visibleBefore = await visibleOnly(visibility, before);
    const visibleAfter = await visibleOnly(visibility, after);
    const last = after.length ? after[after.length - 1] : record;
    const stateIds = await this.store.state.stateAfterEvent(last.eventId);
    const state = stateIds ? [...(await this.store.events.getMany([...stateIds.values()])).values()] : [];
    const lowest = before.length ? before[before.length - 1].depth : record.depth;
    const highest = after.length ? after[after.length - 1].depth : record.depth;
    return {
      start: `d${Math.max(0, lowest - 1)}`,
      end: `d${highest + 1}`,
      event: (await this.view.clientEventsFor(visibility, [record]))[0],
      events_before: await this.view.clientEventsFor(visibility, visibleBefore),
      events_after: await this.view.clientEventsFor(visibility, visibleAfter),
      state: await this.view.clientEvents(state),
    };
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

async function visibleOnly(visibility: EventVisibility, records: readonly EventRecord[]): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const record of records) if (await visibility.mayView(record)) out.push(record);
  return out;
}

/** A filter is accepted and checked to be JSON; fedgate serves the whole context whatever it asks (no lazy loading). */
function parseFilter(filter: unknown): void {
  if (typeof filter !== 'string') throw MatrixError.invalidParam('filter must be a JSON object');
  try {
    const parsed: unknown = JSON.parse(filter);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  } catch {
    throw MatrixError.invalidParam('filter must be a JSON object');
  }
}
