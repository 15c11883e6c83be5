// Read endpoints: events, state, auth chains, backfill, missing events — only for servers in the room at
// the event asked about (or world-readable history).
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { SERVER_IDENTITY, type ServerIdentity } from '@fedgate/platform';
import type { Pdu } from '@fedgate/protocol';
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
    await this.requireVisible(origin, eventId);
    return this.envelope({ pdus: [await this.reads.served(record)] });
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
    await this.requireEventInRoom(roomId, eventId, request.federationOrigin!);
    return { auth_chain: await this.reads.pdus(await this.reads.authChainIds([eventId])) };
  }

  @Get('backfill/:roomId')
  async backfill(@Param('roomId') roomId: string, @Query('v') v: string | string[] | undefined, @Query('limit') limit: string | undefined, @Req() request: IngressRequest) {
    const from = list(v);
    if (from.length === 0) throw MatrixError.missingParam('v is required');
    const max = parseLimit(limit, 10, this.options.maxEventsPerRead);
    for (const eventId of from) await this.requireEventInRoom(roomId, eventId, request.federationOrigin!);
    return this.envelope({ pdus: await this.reads.backfill(roomId, from, max) });
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
    for (const eventId of latest) await this.requireEventInRoom(roomId, eventId, request.federationOrigin!);
    const events = await this.reads.missingEvents(roomId, earliest, latest, limit, minDepth);
    const visible: Pdu[] = [];
    for (const record of events) if (await this.reads.serverMaySee(request.federationOrigin!, record.eventId)) visible.push(await this.reads.served(record));
    return { events: visible };
  }

  private envelope<T extends object>(body: T): T & { origin: string; origin_server_ts: number } {
    return { origin: this.identity.serverName, origin_server_ts: Date.now(), ...body };
  }

  private async requireVisible(origin: string, eventId: string): Promise<void> {
    if (!(await this.reads.serverMaySee(origin, eventId))) throw MatrixError.forbidden(`Server ${origin} is not in the room at ${eventId}`);
  }

  private async requireEventInRoom(roomId: string, eventId: string, origin: string): Promise<void> {
    const record = await this.reads.event(eventId);
    if (!record || record.roomId !== roomId) throw MatrixError.notFound(`Event ${eventId} not found in ${roomId}`);
    await this.requireVisible(origin, eventId);
  }

  private async stateAt(roomId: string, eventId: string | undefined, origin: string): Promise<{ stateIds: string[]; authChainIds: string[] }> {
    if (!eventId) throw MatrixError.missingParam('event_id is required');
    await this.requireEventInRoom(roomId, eventId, origin);
    const stateIds = await this.reads.stateIdsBefore(eventId);
    if (!stateIds) throw MatrixError.notFound(`State at ${eventId} is not known`);
    return { stateIds, authChainIds: await this.reads.authChainIds(stateIds) };
  }
}
