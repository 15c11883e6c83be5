// Typed calls to the server-server endpoints one server makes of another for room work: membership
// handshakes, invites, and the reads that fill gaps in a room's DAG. Shapes follow the spec's
// server-server OpenAPI; answers are shape-checked (not verified: signatures are the caller's job).
import { isObject } from '@fedgate/protocol';
import { FederationClientError, FederationHttpError } from './errors';
import type { FederationHttpClient, RequestOptions } from './federation-http-client';

export type PduJson = Record<string, unknown>;

export interface MakeMembershipResponse {
  /** Absent in answers from old servers: means room version "1". */
  room_version?: string;
  event: PduJson;
}

export interface SendJoinResponse {
  origin?: string;
  state: PduJson[];
  auth_chain: PduJson[];
  /** The join as the resident server signed it (restricted joins). */
  event?: PduJson;
  members_omitted?: boolean;
  servers_in_room?: string[];
}

export interface SendKnockResponse {
  knock_room_state: PduJson[];
}

export interface InviteRequest {
  event: PduJson;
  room_version: string;
  invite_room_state?: PduJson[];
}

export interface MissingEventsRequest {
  earliest_events: string[];
  latest_events: string[];
  limit?: number;
  min_depth?: number;
}

export interface StateIdsResponse {
  pdu_ids: string[];
  auth_chain_ids: string[];
}

export interface StateResponse {
  pdus: PduJson[];
  auth_chain: PduJson[];
}

export interface PdusResponse {
  origin: string;
  origin_server_ts: number;
  pdus: PduJson[];
}

/** Path segment: everything but unreserved characters percent-encoded (room IDs carry `!` and `:`). */
export function pathSegment(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function invalid(destination: string, what: string): FederationClientError {
  return new FederationClientError('INVALID_RESPONSE', `${destination} answered ${what}`);
}

function objectArray(value: unknown, field: string, destination: string): PduJson[] {
  if (!Array.isArray(value) || !value.every(isObject)) throw invalid(destination, `${field} that is not an array of objects`);
  return value as PduJson[];
}

function stringArray(value: unknown, field: string, destination: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw invalid(destination, `${field} that is not an array of strings`);
  return value as string[];
}

function objectBody(body: unknown, destination: string, endpoint: string): Record<string, unknown> {
  if (!isObject(body)) throw invalid(destination, `${endpoint} with a non-object body`);
  return body;
}

function makeMembership(body: unknown, destination: string, endpoint: string): MakeMembershipResponse {
  const b = objectBody(body, destination, endpoint);
  if (!isObject(b.event)) throw invalid(destination, `${endpoint} without an event template`);
  if (b.room_version !== undefined && typeof b.room_version !== 'string') throw invalid(destination, `${endpoint} with a non-string room_version`);
  return { room_version: b.room_version as string | undefined, event: b.event };
}

function isUnrecognized(err: unknown): boolean {
  return err instanceof FederationHttpError && (err.errcode === 'M_UNRECOGNIZED' || (err.status === 404 && err.errcode === undefined));
}

/**
 * The room endpoints of the federation API, over a FederationHttpClient that signs as this server.
 * Non-2xx answers throw FederationHttpError (with the remote's errcode); bad shapes throw INVALID_RESPONSE.
 */
export class FederationApi {
  constructor(
    private readonly http: Pick<FederationHttpClient, 'getJson' | 'putJson' | 'postJson'>,
    private readonly options: RequestOptions = {},
  ) {}

  async makeJoin(destination: string, roomId: string, userId: string, supportedVersions: readonly string[]): Promise<MakeMembershipResponse> {
    const path = `/_matrix/federation/v1/make_join/${pathSegment(roomId)}/${pathSegment(userId)}`;
    const { body } = await this.http.getJson(destination, path, { ...this.options, query: { ver: [...supportedVersions] } });
    return makeMembership(body, destination, 'make_join');
  }

  /** send_join v2; servers that do not know v2 (404/400 M_UNRECOGNIZED) are asked v1, which answers `[200, body]`. */
  async sendJoin(destination: string, roomId: string, eventId: string, event: PduJson, opts: { omitMembers?: boolean } = {}): Promise<SendJoinResponse> {
    const tail = `${pathSegment(roomId)}/${pathSegment(eventId)}`;
    let body: unknown;
    try {
      const query = opts.omitMembers ? { omit_members: true } : undefined;
      ({ body } = await this.http.putJson(destination, `/_matrix/federation/v2/send_join/${tail}`, event, { ...this.options, query }));
    } catch (err) {
      if (!isUnrecognized(err)) throw err;
      ({ body } = await this.http.putJson(destination, `/_matrix/federation/v1/send_join/${tail}`, event, this.options));
      body = unwrapV1(body, destination, 'send_join');
    }
    const b = objectBody(body, destination, 'send_join');
    const response: SendJoinResponse = {
      origin: typeof b.origin === 'string' ? b.origin : undefined,
      state: objectArray(b.state, 'send_join state', destination),
      auth_chain: objectArray(b.auth_chain, 'send_join auth_chain', destination),
    };
    if (b.event !== undefined) {
      if (!isObject(b.event)) throw invalid(destination, 'send_join with a non-object event');
      response.event = b.event;
    }
    if (b.members_omitted !== undefined) response.members_omitted = b.members_omitted === true;
    if (b.servers_in_room !== undefined) response.servers_in_room = stringArray(b.servers_in_room, 'send_join servers_in_room', destination);
    return response;
  }

  async makeLeave(destination: string, roomId: string, userId: string): Promise<MakeMembershipResponse> {
    const path = `/_matrix/federation/v1/make_leave/${pathSegment(roomId)}/${pathSegment(userId)}`;
    const { body } = await this.http.getJson(destination, path, this.options);
    return makeMembership(body, destination, 'make_leave');
  }

  /** send_leave v2, falling back to v1 like send_join. */
  async sendLeave(destination: string, roomId: string, eventId: string, event: PduJson): Promise<void> {
    const tail = `${pathSegment(roomId)}/${pathSegment(eventId)}`;
    try {
      await this.http.putJson(destination, `/_matrix/federation/v2/send_leave/${tail}`, event, this.options);
    } catch (err) {
      if (!isUnrecognized(err)) throw err;
      const { body } = await this.http.putJson(destination, `/_matrix/federation/v1/send_leave/${tail}`, event, this.options);
      unwrapV1(body, destination, 'send_leave');
    }
  }

  async makeKnock(destination: string, roomId: string, userId: string, supportedVersions: readonly string[]): Promise<MakeMembershipResponse> {
    const path = `/_matrix/federation/v1/make_knock/${pathSegment(roomId)}/${pathSegment(userId)}`;
    const { body } = await this.http.getJson(destination, path, { ...this.options, query: { ver: [...supportedVersions] } });
    return makeMembership(body, destination, 'make_knock');
  }

  async sendKnock(destination: string, roomId: string, eventId: string, event: PduJson): Promise<SendKnockResponse> {
    const path = `/_matrix/federation/v1/send_knock/${pathSegment(roomId)}/${pathSegment(eventId)}`;
    const { body } = await this.http.putJson(destination, path, event, this.options);
    const b = objectBody(body, destination, 'send_knock');
    return { knock_room_state: b.knock_room_state === undefined ? [] : objectArray(b.knock_room_state, 'send_knock knock_room_state', destination) };
  }

  /**
   * invite v2: the invitee's server answers with the event carrying its signature too. For room versions 1 and 2 a
   * server that does not know v2 (404/400 M_UNRECOGNIZED) is asked v1: the event is the body (room state in its
   * `unsigned.invite_room_state`), the answer `[200, {event}]`.
   */
  async invite(destination: string, roomId: string, eventId: string, request: InviteRequest): Promise<PduJson> {
    const tail = `${pathSegment(roomId)}/${pathSegment(eventId)}`;
    let body: unknown;
    try {
      ({ body } = await this.http.putJson(destination, `/_matrix/federation/v2/invite/${tail}`, request, this.options));
    } catch (err) {
      if (!isUnrecognized(err) || !['1', '2'].includes(request.room_version)) throw err;
      const event = { ...request.event, unsigned: { ...(isObject(request.event.unsigned) ? request.event.unsigned : {}), invite_room_state: request.invite_room_state ?? [] } };
      ({ body } = await this.http.putJson(destination, `/_matrix/federation/v1/invite/${tail}`, event, this.options));
      body = unwrapV1(body, destination, 'invite');
    }
    const b = objectBody(body, destination, 'invite');
    if (!isObject(b.event)) throw invalid(destination, 'invite without the signed event');
    return b.event;
  }

  async getMissingEvents(destination: string, roomId: string, request: MissingEventsRequest): Promise<PduJson[]> {
    const path = `/_matrix/federation/v1/get_missing_events/${pathSegment(roomId)}`;
    const { body } = await this.http.postJson(destination, path, request, this.options);
    return objectArray(objectBody(body, destination, 'get_missing_events').events, 'get_missing_events events', destination);
  }

  async stateIds(destination: string, roomId: string, eventId: string): Promise<StateIdsResponse> {
    const path = `/_matrix/federation/v1/state_ids/${pathSegment(roomId)}`;
    const { body } = await this.http.getJson(destination, path, { ...this.options, query: { event_id: eventId } });
    const b = objectBody(body, destination, 'state_ids');
    return { pdu_ids: stringArray(b.pdu_ids, 'state_ids pdu_ids', destination), auth_chain_ids: stringArray(b.auth_chain_ids, 'state_ids auth_chain_ids', destination) };
  }

  async state(destination: string, roomId: string, eventId: string): Promise<StateResponse> {
    const path = `/_matrix/federation/v1/state/${pathSegment(roomId)}`;
    const { body } = await this.http.getJson(destination, path, { ...this.options, query: { event_id: eventId } });
    const b = objectBody(body, destination, 'state');
    return { pdus: objectArray(b.pdus, 'state pdus', destination), auth_chain: objectArray(b.auth_chain, 'state auth_chain', destination) };
  }

  /** One event; the answer is a transaction with that single PDU. */
  async event(destination: string, eventId: string): Promise<PduJson> {
    const { body } = await this.http.getJson(destination, `/_matrix/federation/v1/event/${pathSegment(eventId)}`, this.options);
    const pdus = objectArray(objectBody(body, destination, 'event').pdus, 'event pdus', destination);
    if (pdus.length !== 1) throw invalid(destination, `event with ${pdus.length} PDUs instead of 1`);
    return pdus[0];
  }

  async eventAuth(destination: string, roomId: string, eventId: string): Promise<PduJson[]> {
    const path = `/_matrix/federation/v1/event_auth/${pathSegment(roomId)}/${pathSegment(eventId)}`;
    const { body } = await this.http.getJson(destination, path, this.options);
    return objectArray(objectBody(body, destination, 'event_auth').auth_chain, 'event_auth auth_chain', destination);
  }

  async backfill(destination: string, roomId: string, fromEventIds: readonly string[], limit: number): Promise<PdusResponse> {
    const path = `/_matrix/federation/v1/backfill/${pathSegment(roomId)}`;
    const { body } = await this.http.getJson(destination, path, { ...this.options, query: { v: [...fromEventIds], limit } });
    const b = objectBody(body, destination, 'backfill');
    return {
      origin: typeof b.origin === 'string' ? b.origin : destination,
      origin_server_ts: typeof b.origin_server_ts === 'number' ? b.origin_server_ts : 0,
      pdus: objectArray(b.pdus, 'backfill pdus', destination),
    };
  }
}

/** v1 of send_join/send_leave answers `[200, body]`. */
function unwrapV1(body: unknown, destination: string, endpoint: string): unknown {
  if (Array.isArray(body) && body.length === 2 && typeof body[0] === 'number') return body[1];
  throw invalid(destination, `${endpoint} v1 with a body that is not [status, body]`);
}
