// "Jump to date" beyond the history held here: when the closest event found locally borders a gap (the timeline
// held does not reach the room's create event), the servers in the room are asked `timestamp_to_event`; a closer
// answer is fetched by backfill and served if the user may see it (spec: client-server `timestamp_to_event`).
import { Inject, Injectable } from '@nestjs/common';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import type { EventRecord } from '@fedgate/store';
import { RoomCommands } from './room-commands';

/** Servers asked per lookup at most. */
const MAX_SERVERS_ASKED = 3;
/** Events fetched by backfill to reach a remote answer. */
const BACKFILL_LIMIT = 100;

export interface RemoteAnswer {
  eventId: string;
  ts: number;
}

@Injectable()
export class RemoteTimestamps {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient,
    private readonly commands: RoomCommands,
  ) {}

  /** The first answer of the room's other servers that is closer to `ts` than `localTs` (any, when none). */
  async closerAnswer(roomId: string, ts: number, dir: 'f' | 'b', localTs: number | undefined): Promise<RemoteAnswer | undefined> {
    const servers = (await this.store.rooms.getJoinedServers(roomId)).filter((s) => s !== this.identity.serverName).slice(0, MAX_SERVERS_ASKED);
    for (const destination of servers) {
      try {
        const { body } = await this.federation.request<{ event_id?: unknown; origin_server_ts?: unknown }>({
          destination,
          method: 'GET',
          path: `/_matrix/federation/v1/timestamp_to_event/${encodeURIComponent(roomId)}`,
          query: { ts: String(ts), dir },
        });
        if (typeof body.event_id !== 'string' || typeof body.origin_server_ts !== 'number') continue;
        const answer = { eventId: body.event_id, ts: body.origin_server_ts };
        const onTheRightSide = dir === 'f' ? answer.ts >= ts : answer.ts <= ts;
        if (onTheRightSide && (localTs === undefined || Math.abs(answer.ts - ts) < Math.abs(localTs - ts))) return answer;
        return undefined;
      } catch {
        // The next server may answer; none answering leaves the local result.
      }
    }
    return undefined;
  }

  /** The remote answer's event, fetched by backfill from before `oldestDepth` when not held yet. */
  async fetch(roomId: string, answer: RemoteAnswer, oldestDepth: number): Promise<EventRecord | undefined> {
    const held = await this.store.events.get(answer.eventId);
    if (held) return held.roomId === roomId ? held : undefined;
    const fetched = await this.commands.backfill(roomId, oldestDepth, BACKFILL_LIMIT);
    if (!fetched.ok) return undefined;
    const record = await this.store.events.get(answer.eventId);
    return record?.roomId === roomId ? record : undefined;
  }
}
