// Read endpoints: events, state, auth chains, backfill, missing events. Each event is served per history
// visibility for the asking server; reads start only at non-rejected events of the room named and never leave it.
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { SERVER_IDENTITY, type ServerIdentity } from '@fedgate/platform';
import type { Pdu } from '@fedgate/protocol';
import type { EventRecord, EventVisibility } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { RoomAccess } from '../auth/room-access';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import type { IngressRequest } from '../federation-request';
import { INGRESS_OPTIONS, type IngressOptions } from '../ingress-options';
import type { RoomReads } from '../rooms/room-reads';

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function parseLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0) throw MatrixError.invalidParam('limit must be a non-negative integer');
  return Math.min(n, max);
}

@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class RoomReadController {
  private readonly reads: RoomReads;

  constructor(
    private readonly access: RoomAccess,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(INGRESS_OPTIONS) private readonly options: IngressOptions,
  ) {
    this.reads = access.reads;
  }

  @Get('event/:eventId')
  async event(@Param('eventId') eventId: string, @Req() request: IngressRequest) {
    const record = await this.reads.event(eventId);
    if (!record || record.status === 'rejected') throw MatrixError.notFound(`Event ${eventId} not found`);
    const origin = request.federationOrigin!;
    if (!(await this.access.aclAllows(record.roomId, origin))) throw MatrixError.forbidden(`Server ${origin} is denied by the room's server ACL`);
    const [pdu] = await this.servedTo(this.reads.visibilityFor(origin), [record]);
    if (!pdu) throw MatrixError.forbidden(`Server ${origin} is not in the room at ${eventId}`);
    return this.envelope({ pdus: [pdu] });
  }

  @Get('state_ids/:roomId')
  async stateIds(@Param('roomId') roomId: string, @Query('event_id') eventId: string | undefined, @Req() request: IngressRequest) {
    const { stateIds, authChainIds } = await this.stateAt(roomId, eventId, request.federationOrigin!);
    return { pdu_ids: stateIds, auth_chain_ids: authChainIds };
  }

  @Get('state/:roomId')
  async state(@Param('roomId') roomId: string, @Query('event_id') eventId: string | undefined, @Req() request: IngressRequest) {
    const { stateIds, authChainIds } = await this.stateAt(roomId, eventId, request.federationOrigin!);
    return { pdus: await this.reads.pdus(stateIds), auth_chain: await this.reads.pdus(authChainIds) };
  }

  @Get('event_auth/:roomId/:eventId')
  async eventAuth(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Req() request: IngressRequest) {
    await this.requireVisibleAnchor(roomId, eventId, this.reads.visibilityFor(request.federationOrigin!));
    return { auth_chain: await this.reads.pdus(await this.reads.authChainIds(roomId, [eventId])) };
  }

  @Get('backfill/:roomId')
  async backfill(@Param('roomId') roomId: string, @Query('v') v: string | string[] | undefined, @Query('limit') limit: string | undefined, @Req() request: IngressRequest) {
    const from = list(v);
    if (from.length === 0) throw MatrixError.missingParam('v is required');
    const max = parseLimit(limit, 10, this.options.maxEventsPerRead);
    const visibility = this.reads.visibilityFor(request.federationOrigin!);
    await this.requireReadableFrom(roomId, from, visibility);
    return this.envelope({ pdus: await this.servedTo(visibility, await this.reads.backfill(roomId, from, max)) });
  }

  @Post('get_missing_events/:roomId')
  @HttpCode(200)
  async missingEvents(@Param('roomId') roomId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    const b = (body ?? {}) as { earliest_events?: unknown; latest_events?: unknown; limit?: unknown; min_depth?: unknown };
    const ids = (value: unknown, field: string) => {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw MatrixError.badJson(`${field} must be an array of event IDs`);
      return value as string[];
    };
    const earliest = ids(b.earliest_events, 'earliest_events');
    const latest = ids(b.latest_events, 'latest_events');
    const limit = parseLimit(b.limit, 10, this.options.maxEventsPerRead);
    const minDepth = typeof b.min_depth === 'number' ? b.min_depth : 0;
    const visibility = this.reads.visibilityFor(request.federationOrigin!);
    await this.requireReadableFrom(roomId, latest, visibility);
    return { events: await this.servedTo(visibility, await this.reads.missingEvents(roomId, earliest, latest, limit, minDepth)) };
  }

  private envelope<T extends object>(body: T): T & { origin: string; origin_server_ts: number } {
    return { origin: this.identity.serverName, origin_server_ts: Date.now(), ...body };
  }

  /**
   * Events as a server may have them, per event: whole when history visibility lets it see the event; redacted
   * when it may not but is in the room now (it needs the DAG's shape); left out otherwise. An erased sender's
   * event is served redacted to a server that had no user joined at the event.
   */
  private async servedTo(visibility: EventVisibility, records: readonly EventRecord[]): Promise<Pdu[]> {
    const out: Pdu[] = [];
    for (const record of records) {
      if (await visibility.mayView(record)) out.push(await ((await visibility.erasedFor(record)) ? this.reads.servedRedacted(record) : this.reads.served(record)));
      else if (await visibility.inRoomNow(record.roomId)) out.push(await this.reads.servedRedacted(record));
    }
    return out;
  }

  /** An event of this room that passed auth: rejected events and other rooms' events are no anchor for a read. */
  private async requireAnchor(roomId: string, eventId: string): Promise<EventRecord> {
    const record = await this.reads.event(eventId);
    if (!record || record.roomId !== roomId || record.status === 'rejected') throw MatrixError.notFound(`Event ${eventId} not found in ${roomId}`);
    return record;
  }

  /** State and auth chains are served only at an event the server may see whole. */
  private async requireVisibleAnchor(roomId: string, eventId: string, visibility: EventVisibility): Promise<void> {
    const record = await this.requireAnchor(roomId, eventId);
    if (!(await visibility.mayView(record))) throw MatrixError.forbidden(`Server ${visibility.viewerName} may not see ${eventId}`);
  }

  /** Walks (backfill, get_missing_events) start at anchors of the room, for a server in the room or one that may see every anchor. */
  private async requireReadableFrom(roomId: string, eventIds: readonly string[], visibility: EventVisibility): Promise<void> {
    const anchors = [];
    for (const eventId of eventIds) anchors.push(await this.requireAnchor(roomId, eventId));
    if (await visibility.inRoomNow(roomId)) return;
    for (const anchor of anchors) if (!(await visibility.mayView(anchor))) throw MatrixError.forbidden(`Server ${visibility.viewerName} is not in the room at ${anchor.eventId}`);
  }

  private async stateAt(roomId: string, eventId: string | undefined, origin: string): Promise<{ stateIds: string[]; authChainIds: string[] }> {
    if (!eventId) throw MatrixError.missingParam('event_id is required');
    await this.requireVisibleAnchor(roomId, eventId, this.reads.visibilityFor(origin));
    const stateIds = await this.reads.stateIdsBefore(roomId, eventId);
    if (!stateIds) throw MatrixError.notFound(`State at ${eventId} is not known`);
    return { stateIds, authChainIds: await this.reads.authChainIds(roomId, stateIds) };
  }
}
