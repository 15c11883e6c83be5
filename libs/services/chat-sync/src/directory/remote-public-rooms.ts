// Another server's public room directory, for client-server `publicRooms?server=`: asked over federation
// (`/_matrix/federation/v1/publicRooms`, GET or POST as the client asked) within a bounded time, and relayed.
// The answer is another server's word: only the spec's fields, in their types, are kept, at most a page of rooms.
// A server that does not answer in time, or answers with something else, is a 502; its own 4xx refusals (a
// `since` it did not give, say) are passed on. Every request is audited (`out`), a failure with its reason.
import { Inject, Injectable, Optional } from '@nestjs/common';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { FederationHttpError } from '@fedgate/federation-client';
import { isObject, type PublicRoomChunk } from '@fedgate/room-state';
import { MatrixError, type PublicRoomsRequest } from '@fedgate/service-kit';
import { MAX_PUBLIC_ROOMS_LIMIT } from '@fedgate/store';

export const REMOTE_PUBLIC_ROOMS_TIMEOUT_MS = Symbol('REMOTE_PUBLIC_ROOMS_TIMEOUT_MS');
export const DEFAULT_REMOTE_PUBLIC_ROOMS_TIMEOUT_MS = 10_000;
const MAX_STRING = 1_000;
const MAX_TOKEN = 2_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

const shortString = (v: unknown, max = MAX_STRING): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** One room of another server's directory, as the spec defines it; undefined when it is not one. */
export function sanitizePublicRoom(value: unknown): PublicRoomChunk | undefined {
  if (!isObject(value) || !shortString(value.room_id) || !value.room_id.startsWith('!')) return undefined;
  const joined = value.num_joined_members;
  const room: PublicRoomChunk = {
    room_id: value.room_id,
    num_joined_members: typeof joined === 'number' && Number.isInteger(joined) && joined >= 0 ? joined : 0,
    world_readable: value.world_readable === true,
    guest_can_join: value.guest_can_join === true,
    join_rule: shortString(value.join_rule) ? value.join_rule : 'public',
  };
  for (const field of ['name', 'topic', 'canonical_alias', 'avatar_url', 'room_type'] as const) {
    if (shortString(value[field])) room[field] = value[field];
  }
  return room;
}

/** What is kept of a `publicRooms` answer; throws when it is not one. */
export function sanitizePublicRoomsAnswer(body: unknown, limit: number | undefined) {
  if (!isObject(body) || !Array.isArray(body.chunk)) throw new Error('the answer has no chunk of rooms');
  const pageSize = Math.min(limit ?? MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
  const chunk = body.chunk.flatMap((room) => sanitizePublicRoom(room) ?? []).slice(0, pageSize);
  const estimate = body.total_room_count_estimate;
  return {
    chunk,
    ...(shortString(body.next_batch, MAX_TOKEN) ? { next_batch: body.next_batch } : {}),
    ...(shortString(body.prev_batch, MAX_TOKEN) ? { prev_batch: body.prev_batch } : {}),
    ...(typeof estimate === 'number' && Number.isInteger(estimate) && estimate >= 0 ? { total_room_count_estimate: estimate } : {}),
  };
}

@Injectable()
export class RemotePublicRooms {
  private readonly timeoutMs: number;

  constructor(
    @Inject(FEDERATION_CLIENT) private readonly federation: Pick<FederationHttpClient, 'getJson' | 'postJson'>,
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Optional() @Inject(REMOTE_PUBLIC_ROOMS_TIMEOUT_MS) timeoutMs?: number,
  ) {
    this.timeoutMs = timeoutMs ?? DEFAULT_REMOTE_PUBLIC_ROOMS_TIMEOUT_MS;
  }

  /** `method`: how the client asked (GET: limit and since only), and so how the server is asked. */
  async page(server: string, method: 'GET' | 'POST', request: PublicRoomsRequest) {
    const path = '/_matrix/federation/v1/publicRooms';
    const started = Date.now();
    let status = 0;
    try {
      const options = { timeoutMs: this.timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES };
      const asked =
        method === 'GET'
          ? this.federation.getJson(server, path, { ...options, query: queryOf(request) })
          : this.federation.postJson(server, path, bodyOf(request), options);
      const response = await withDeadline(asked, this.timeoutMs, `${server} did not answer within ${this.timeoutMs} ms`);
      status = response.status;
      const answer = sanitizePublicRoomsAnswer(response.body, request.limit);
      await this.audit(server, method, path, started, status, 'ok');
      return answer;
    } catch (error) {
      const refused = error instanceof FederationHttpError && error.status >= 400 && error.status < 500 && /^M_[A-Z_]{1,60}$/.test(error.errcode ?? '');
      if (error instanceof FederationHttpError) status = error.status;
      const reason = error instanceof FederationHttpError ? `${server} answered ${error.status} ${error.errcode ?? ''}`.trim() : `${server}: ${(error as Error).message}`;
      await this.audit(server, method, path, started, status, refused ? 'rejected' : 'error', reason);
      if (refused) throw new MatrixError((error as FederationHttpError).status, (error as FederationHttpError).errcode as string, `${server} refused: ${matrixErrorText(error)}`);
      throw MatrixError.unknown(`Could not list the public rooms of ${server}: ${reason}`, 502);
    }
  }

  private async audit(server: string, method: string, path: string, started: number, status: number, outcome: 'ok' | 'rejected' | 'error', reason?: string): Promise<void> {
    await this.store.audit
      .append({ direction: 'out', origin: this.identity.serverName, destination: server, method, path, ts: started, durationMs: Date.now() - started, status, outcome, ...(reason ? { reason } : {}) })
      .catch(() => undefined);
  }
}

function queryOf(request: PublicRoomsRequest): Record<string, string | number | boolean> {
  return {
    ...(request.limit !== undefined ? { limit: request.limit } : {}),
    ...(request.since !== undefined ? { since: request.since } : {}),
    ...(request.includeAllNetworks ? { include_all_networks: true } : {}),
    ...(request.thirdPartyInstanceId !== undefined ? { third_party_instance_id: request.thirdPartyInstanceId } : {}),
  };
}

function bodyOf(request: PublicRoomsRequest): Record<string, unknown> {
  const filter = {
    ...(request.searchTerm !== undefined ? { generic_search_term: request.searchTerm } : {}),
    ...(request.roomTypes !== undefined ? { room_types: request.roomTypes } : {}),
  };
  return { ...queryOf(request), ...(Object.keys(filter).length ? { filter } : {}) };
}

function matrixErrorText(error: unknown): string {
  const body = (error as FederationHttpError).body;
  return isObject(body) && shortString(body.error, 200) ? body.error : 'no reason given';
}

/** The answer, or a rejection once `ms` have passed (whatever the transport's own timeout does). */
function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
