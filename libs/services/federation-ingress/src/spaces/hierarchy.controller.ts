// `GET /_matrix/federation/v1/hierarchy/{roomId}`: a space and its children, for a server that could peek or
// join them. A room the asking server could not is answered as unknown (404, as the spec says), a child it
// could not is named in `inaccessible_children`, a child this server is not in is left out.
import { Controller, Get, Inject, Param, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { LRUCache } from 'lru-cache';
import { factsAllowServer, hierarchyRoomOf, roomFacts, SPACE_ROOM_TYPE, type HierarchyRoom, type RoomFacts, type RoomSummary } from '@fedgate/room-state';
import { loadSummaryState } from '@fedgate/store';
import { MatrixError, parseBooleanFlag } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { RoomAccess } from '../auth/room-access';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import { notesOf, type IngressRequest } from '../federation-request';

export interface FederationHierarchy {
  room: HierarchyRoom;
  children: (RoomSummary & { children_state: HierarchyRoom['children_state'] })[];
  inaccessible_children: string[];
}

@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class FederationHierarchyController {
  /** Facts per (room, state snapshot): a space asked about again, or a room linked from many, is read once. */
  private readonly facts = new LRUCache<string, RoomFacts>({ max: 1_000 });

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly access: RoomAccess,
  ) {}

  @Get('hierarchy/:roomId')
  async hierarchy(@Param('roomId') roomId: string, @Query('suggested_only') suggested: string | undefined, @Req() request: IngressRequest): Promise<FederationHierarchy> {
    const origin = request.federationOrigin!;
    const suggestedOnly = parseBooleanFlag(suggested, 'suggested_only');
    if (!roomId.startsWith('!')) throw MatrixError.invalidParam(`${JSON.stringify(roomId)} is not a room ID`);
    if (!(await this.access.aclAllows(roomId, origin))) throw MatrixError.forbidden(`Server ${origin} is denied by the room's server ACL`);
    const room = await this.residentRoom(roomId);
    if (!room || !(await this.mayPeekOrJoin(room, origin))) {
      // Not known here and not visible to the origin answer alike, so the answer does not tell which.
      notesOf(request).reason = room ? 'hierarchy_room_not_accessible' : 'hierarchy_room_unknown';
      throw MatrixError.notFound('Room does not exist or is not accessible to your server');
    }
    const served = hierarchyRoomOf(room, { suggestedOnly });
    const children: FederationHierarchy['children'] = [];
    const inaccessible: string[] = [];
    if (served.room_type === SPACE_ROOM_TYPE) {
      for (const link of served.children_state) {
        const child = await this.residentRoom(link.state_key);
        if (!child) continue;
        if (!(await this.access.aclAllows(link.state_key, origin)) || !(await this.mayPeekOrJoin(child, origin))) inaccessible.push(link.state_key);
        else children.push(hierarchyRoomOf(child, { suggestedOnly }));
      }
    }
    return { room: served, children, inaccessible_children: inaccessible };
  }

  /** The facts of a room whose current state this server can vouch for: it is joined there. */
  private async residentRoom(roomId: string): Promise<RoomFacts | undefined> {
    if (!(await this.store.rooms.getJoinedServers(roomId)).includes(this.identity.serverName)) return undefined;
    const record = await this.store.rooms.get(roomId);
    if (!record?.currentStateId) return undefined;
    const key = `${roomId} ${record.currentStateId}`;
    const cached = this.facts.get(key);
    if (cached) return cached;
    const source = await loadSummaryState(this.store, roomId);
    if (!source) return undefined;
    const facts = roomFacts(roomId, source.roomVersion, source.state);
    this.facts.set(key, facts);
    return facts;
  }

  private async mayPeekOrJoin(room: RoomFacts, origin: string): Promise<boolean> {
    const joinedElsewhere = new Map<string, boolean>();
    for (const allowed of room.summary.allowed_room_ids ?? []) joinedElsewhere.set(allowed, (await this.store.rooms.getJoinedServers(allowed)).includes(origin));
    return factsAllowServer(room, origin, (id) => joinedElsewhere.get(id) === true);
  }
}
