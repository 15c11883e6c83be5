// `GET /_matrix/federation/v1/timestamp_to_event/{roomId}`: the event of the room closest to a time, for a
// server that may see it (history visibility by its members at the event, and the room's server ACL).
import { Controller, Get, Inject, Param, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError, parseTimestampQuery } from '@fedgate/service-kit';
import { closestEventByTimestamp, originTs } from '@fedgate/store';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { RoomAccess } from '../auth/room-access';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import type { IngressRequest } from '../federation-request';

@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class TimestampToEventController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly access: RoomAccess,
  ) {}

  @Get('timestamp_to_event/:roomId')
  async timestampToEvent(@Param('roomId') roomId: string, @Query() query: Record<string, unknown>, @Req() request: IngressRequest) {
    const origin = request.federationOrigin!;
    const { ts, dir } = parseTimestampQuery(query);
    if (!(await this.access.reads.roomVersion(roomId))) throw MatrixError.notFound(`Unknown room ${roomId}`);
    if (!(await this.access.aclAllows(roomId, origin))) throw MatrixError.forbidden(`Server ${origin} is denied by the room's server ACL`);
    const visibility = this.access.reads.visibilityFor(origin);
    const found = await closestEventByTimestamp(this.store, { roomId, ts, dir, mayView: (record) => visibility.mayView(record) });
    if (!found) throw MatrixError.notFound(`Unable to find event from ${ts} in direction ${dir}`);
    return { event_id: found.eventId, origin_server_ts: originTs(found) };
  }
}
