// GET /_matrix/client/v1/rooms/{roomId}/hierarchy (SpaceHierarchy does the walk).
import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { MatrixError, parseBooleanFlag } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { queryList } from '../client-server/paths';
import { assertRoomId } from '../rooms/room-actions';
import { HIERARCHY_LIMITS, SpaceHierarchy, type HierarchyQuery } from './space-hierarchy';

function integer(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw MatrixError.invalidParam(`${name} must be an integer of at least ${min}`);
  return n;
}

export function parseHierarchyQuery(query: Record<string, unknown>): HierarchyQuery {
  const from = query.from;
  if (from !== undefined && typeof from !== 'string') throw MatrixError.invalidParam('from must be a single token');
  return {
    suggestedOnly: parseBooleanFlag(query.suggested_only, 'suggested_only'),
    limit: Math.min(integer(query.limit, 'limit', 1) ?? HIERARCHY_LIMITS.defaultLimit, HIERARCHY_LIMITS.maxLimit),
    maxDepth: Math.min(integer(query.max_depth, 'max_depth', 0) ?? HIERARCHY_LIMITS.defaultMaxDepth, HIERARCHY_LIMITS.maxMaxDepth),
    ...(from !== undefined ? { from } : {}),
    via: queryList(query.via).slice(0, 10),
  };
}

@Controller('_matrix/client/v1')
@UseGuards(AppServiceAuthGuard)
export class ClientHierarchyController {
  constructor(private readonly hierarchy: SpaceHierarchy) {}

  @Get('rooms/:roomId/hierarchy')
  async get(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Query() query: Record<string, unknown>) {
    assertRoomId(roomId);
    return this.hierarchy.page(requester.userId, roomId, parseHierarchyQuery(query));
  }
}
