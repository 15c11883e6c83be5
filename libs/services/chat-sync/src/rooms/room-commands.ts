// chat-sync's side of the state-resolver commands: request/reply on the room's partition, with a
// refusal turned into the Matrix error the client-server API answers with.
import { Inject, Injectable } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, type Bus, type BusTopology } from '@fedgate/platform';
import { BusRequestError, unansweredStatus, type BackfillReply, type CreateEventCommand, type JsonObject, type MembershipKind, type RemoteMembershipReply } from '@fedgate/bus';
import { MatrixError } from '@fedgate/service-kit';

const statusByErrcode: Record<string, number> = {
  M_FORBIDDEN: 403,
  M_NOT_FOUND: 404,
  M_BAD_JSON: 400,
  M_INVALID_PARAM: 400,
  M_MISSING_PARAM: 400,
  M_TOO_LARGE: 413,
  M_LIMIT_EXCEEDED: 429,
  M_UNSUPPORTED_ROOM_VERSION: 400,
  M_INCOMPATIBLE_ROOM_VERSION: 400,
  M_ROOM_IN_USE: 400,
  M_UNKNOWN: 500,
};

export interface CreatedEvent {
  eventId: string;
  /** The room the event is in: for `m.room.create` of a v12 room, derived from the event. */
  roomId: string;
}

@Injectable()
export class RoomCommands {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
  ) {}

  async createEvent(command: CreateEventCommand): Promise<CreatedEvent> {
    const reply = await this.request(() => this.bus.request(this.topology.createEvent.subjectFor(command.roomId), command));
    if (!reply.ok) throw refusal(reply);
    const roomId = (reply as { roomId?: unknown }).roomId;
    return { eventId: reply.eventId, roomId: typeof roomId === 'string' ? roomId : command.roomId };
  }

  async remoteMembership(roomId: string, userId: string, membership: MembershipKind, via: string[], content?: JsonObject): Promise<{ roomId: string; eventId: string }> {
    const reply: RemoteMembershipReply = await this.request(() =>
      this.bus.request(this.topology.remoteMembership.subjectFor(roomId), { roomId, userId, membership, via, content }),
    );
    if (!reply.ok) throw refusal(reply);
    return { roomId: reply.roomId, eventId: reply.eventId };
  }

  /**
   * Asks state-resolver to fetch history from before what this server holds at or below `atOrBelowDepth`. A
   * refusal or no answer is returned, not thrown: the page is served from what is held (state-resolver audits why).
   */
  async backfill(roomId: string, atOrBelowDepth: number, limit: number): Promise<BackfillReply> {
    try {
      return await this.bus.request(this.topology.backfill.subjectFor(roomId), { roomId, atOrBelowDepth, limit });
    } catch (err) {
      const status = err instanceof BusRequestError ? unansweredStatus(err) : 502;
      return { ok: false, errcode: 'M_UNKNOWN', error: `The room service did not answer: ${(err as Error).message}`, status };
    }
  }

  private async request<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      // A timeout is retryable (504): the command may still complete, and a retry with the same txnId gets its answer.
      const status = err instanceof BusRequestError ? unansweredStatus(err) : 502;
      throw new MatrixError(status, 'M_UNKNOWN', `The room service did not answer: ${(err as Error).message}`);
    }
  }
}

function refusal(reply: { errcode: string; error: string; status?: number; retry_after_ms?: unknown }): MatrixError {
  // A rate limit passed on from further away (a room's policy server) keeps its retry_after_ms.
  const extra = typeof reply.retry_after_ms === 'number' ? { retry_after_ms: reply.retry_after_ms } : undefined;
  return new MatrixError(reply.status ?? statusByErrcode[reply.errcode] ?? 500, reply.errcode, reply.error, extra);
}
