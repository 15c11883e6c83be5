// Spaces this server is not in, asked of the servers a `m.space.child` link names over federation
// (`GET /_matrix/federation/v1/hierarchy/{roomId}`). A remote answer is another server's word: only the fields
// the spec defines are kept, in their types, a summary must be of the room asked, a child summary only of a
// child the room links; anything else is left out. Answers are cached for a while (the spec asks for it), per
// process and bounded. Every request is audited (`out`), a failure with its reason.
import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { FederationHttpError } from '@fedgate/federation-client';
import { type ChildLink, hasValidVia, type HierarchyRoom, isObject, MAX_CHILDREN_PER_SPACE } from '@fedgate/room-state';

/** How long a remote answer is reused. */
export const REMOTE_HIERARCHY_TTL_MS = 5 * 60_000;
const CACHE_ENTRIES = 2_000;
const MAX_STRING = 1_000;
/** Servers of a link's `via` asked in turn at most. */
const MAX_SERVERS_ASKED = 3;

export interface RemoteHierarchy {
  room: HierarchyRoom;
  children: HierarchyRoom[];
  inaccessibleChildren: string[];
}

/** `server`: who answered. */
export type RemoteHierarchyOutcome = { ok: true; answer: RemoteHierarchy; server: string } | { ok: false; status: number; reason: string };

const shortString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_STRING;

function childLinkFrom(value: unknown): ChildLink | undefined {
  if (!isObject(value) || value.type !== 'm.space.child' || !shortString(value.state_key) || !value.state_key.startsWith('!')) return undefined;
  if (!isObject(value.content) || !hasValidVia(value.content) || !shortString(value.sender) || typeof value.origin_server_ts !== 'number') return undefined;
  const via = (value.content.via as string[]).filter(shortString).slice(0, 20);
  const content: Record<string, unknown> = { via };
  if (typeof value.content.order === 'string' && value.content.order.length <= 50) content.order = value.content.order;
  if (value.content.suggested === true) content.suggested = true;
  return { type: 'm.space.child', state_key: value.state_key, content, sender: value.sender, origin_server_ts: value.origin_server_ts };
}

/** A summary as another server gave it, with only the spec's fields in their types; undefined when it is not one. */
export function sanitizeSummary(value: unknown): HierarchyRoom | undefined {
  if (!isObject(value) || !shortString(value.room_id) || !value.room_id.startsWith('!')) return undefined;
  const joined = value.num_joined_members;
  const room: HierarchyRoom = {
    room_id: value.room_id,
    num_joined_members: typeof joined === 'number' && Number.isInteger(joined) && joined >= 0 ? joined : 0,
    world_readable: value.world_readable === true,
    guest_can_join: value.guest_can_join === true,
    join_rule: shortString(value.join_rule) ? value.join_rule : 'public',
    children_state: Array.isArray(value.children_state) ? value.children_state.slice(0, MAX_CHILDREN_PER_SPACE).flatMap((c) => childLinkFrom(c) ?? []) : [],
  };
  for (const field of ['name', 'topic', 'canonical_alias', 'avatar_url', 'room_type', 'encryption', 'room_version'] as const) {
    if (shortString(value[field])) room[field] = value[field];
  }
  if (Array.isArray(value.allowed_room_ids)) room.allowed_room_ids = value.allowed_room_ids.filter((id): id is string => shortString(id) && id.startsWith('!')).slice(0, 50);
  return room;
}

/** What is kept of a federation hierarchy answer about `roomId`: throws when it is not an answer about that room. */
export function sanitizeRemoteHierarchy(roomId: string, body: unknown): RemoteHierarchy {
  const answer = isObject(body) ? body : {};
  const room = sanitizeSummary(answer.room);
  if (!room || room.room_id !== roomId) throw new Error(`the answer's room is not ${roomId}`);
  const linked = new Set(room.children_state.map((c) => c.state_key));
  const children = (Array.isArray(answer.children) ? answer.children.slice(0, MAX_CHILDREN_PER_SPACE) : []).flatMap((c) => {
    const child = sanitizeSummary(c);
    return child && linked.has(child.room_id) ? [child] : [];
  });
  const inaccessibleChildren = (Array.isArray(answer.inaccessible_children) ? answer.inaccessible_children.slice(0, MAX_CHILDREN_PER_SPACE) : []).filter(
    (id): id is string => typeof id === 'string' && linked.has(id),
  );
  return { room, children, inaccessibleChildren };
}

@Injectable()
export class RemoteHierarchies {
  private readonly answers = new LRUCache<string, RemoteHierarchy>({ max: CACHE_ENTRIES, ttl: REMOTE_HIERARCHY_TTL_MS });

  constructor(
    @Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient,
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  /**
   * A child's summary `server` gave with its parent space, when still cached. Everything is cached per answering
   * server: what one server says about a room is used only where that server was the one to ask (a link naming
   * it), never for a link through another server.
   */
  cachedChild(roomId: string, suggestedOnly: boolean, server: string | undefined): HierarchyRoom | undefined {
    return server === undefined ? undefined : this.answers.get(childKey(server, roomId, suggestedOnly))?.room;
  }

  /** Whether `server`, answering about a parent space, said the child is not accessible from anywhere. */
  knownInaccessible(roomId: string, suggestedOnly: boolean, server: string | undefined): boolean {
    return server !== undefined && this.answers.get(inaccessibleKey(server, roomId, suggestedOnly)) !== undefined;
  }

  /** Asks `servers` in turn, each with what is left of `deadline`; the first good answer wins. */
  async fetch(roomId: string, servers: readonly string[], suggestedOnly: boolean, deadline: number): Promise<RemoteHierarchyOutcome> {
    const candidates = [...new Set(servers)].filter((s) => s !== this.identity.serverName).slice(0, MAX_SERVERS_ASKED);
    for (const server of candidates) {
      const cached = this.answers.get(roomKey(server, roomId, suggestedOnly));
      if (cached) return { ok: true, answer: cached, server };
    }
    let refused: RemoteHierarchyOutcome | undefined;
    let last: RemoteHierarchyOutcome = { ok: false, status: 403, reason: `no server to ask about ${roomId}` };
    for (const server of candidates) {
      const timeoutMs = Math.min(5_000, deadline - Date.now());
      if (timeoutMs <= 0) return { ok: false, status: 504, reason: `out of time asking about ${roomId}` };
      last = await this.ask(server, roomId, suggestedOnly, timeoutMs);
      if (last.ok) {
        this.remember(server, roomId, suggestedOnly, last.answer);
        return last;
      }
      // A server not in the room answers 404 too: the next one may be.
      if (last.status === 403) refused = last;
      else if (Date.now() >= deadline) return { ok: false, status: 504, reason: `out of time asking about ${roomId}: ${last.reason}` };
    }
    return refused ?? last;
  }

  private async ask(server: string, roomId: string, suggestedOnly: boolean, timeoutMs: number): Promise<RemoteHierarchyOutcome> {
    const path = `/_matrix/federation/v1/hierarchy/${encodeURIComponent(roomId)}`;
    const started = Date.now();
    let outcome: RemoteHierarchyOutcome;
    let status = 0;
    try {
      const response = await this.federation.getJson(server, path, { query: { suggested_only: suggestedOnly }, timeoutMs, maxResponseBytes: 1024 * 1024 });
      status = response.status;
      outcome = { ok: true, answer: sanitizeRemoteHierarchy(roomId, response.body), server };
    } catch (error) {
      if (error instanceof FederationHttpError) {
        status = error.status;
        outcome = { ok: false, status: error.status === 404 || error.status === 403 ? 403 : 502, reason: `${server} answered ${error.status} ${error.errcode ?? ''}`.trim() };
      } else {
        outcome = { ok: false, status: 502, reason: `${server}: ${(error as Error).message}` };
      }
    }
    await this.store.audit
      .append({
        direction: 'out',
        origin: this.identity.serverName,
        destination: server,
        method: 'GET',
        path,
        ts: started,
        durationMs: Date.now() - started,
        status,
        outcome: outcome.ok ? 'ok' : status >= 400 && status < 500 ? 'rejected' : 'error',
        ...(outcome.ok ? {} : { reason: outcome.reason }),
      })
      .catch(() => undefined);
    return outcome;
  }

  private remember(server: string, roomId: string, suggestedOnly: boolean, answer: RemoteHierarchy): void {
    this.answers.set(roomKey(server, roomId, suggestedOnly), answer);
    for (const child of answer.children) this.answers.set(childKey(server, child.room_id, suggestedOnly), { room: child, children: [], inaccessibleChildren: [] });
    for (const id of answer.inaccessibleChildren) this.answers.set(inaccessibleKey(server, id, suggestedOnly), { room: { room_id: id } as HierarchyRoom, children: [], inaccessibleChildren: [] });
  }
}

const roomKey = (server: string, roomId: string, suggestedOnly: boolean) => `room ${suggestedOnly} ${server} ${roomId}`;
const childKey = (server: string, roomId: string, suggestedOnly: boolean) => `child ${suggestedOnly} ${server} ${roomId}`;
const inaccessibleKey = (server: string, roomId: string, suggestedOnly: boolean) => `inaccessible ${suggestedOnly} ${server} ${roomId}`;
