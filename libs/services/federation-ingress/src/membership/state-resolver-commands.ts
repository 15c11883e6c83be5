// Calls state-resolver's membership commands and turns refusals into the Matrix errors ingress answers with.
import { Inject, Injectable } from '@nestjs/common';
import {
  BusRequestError,
  unansweredStatus,
  type CommandError,
  type CommandSubject,
  type CreateEventCommand,
  type CreateEventReply,
  type MakeMembershipCommand,
  type MakeMembershipReply,
  type ReceiveInviteCommand,
  type ReceiveInviteReply,
  type SendMembershipCommand,
  type SendMembershipReply,
} from '@fedgate/bus';
import { BUS, BUS_TOPOLOGY, type Bus, type BusTopology } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';

const STATUS_BY_ERRCODE: Record<string, number> = {
  M_FORBIDDEN: 403,
  M_NOT_FOUND: 404,
  M_INCOMPATIBLE_ROOM_VERSION: 400,
  M_UNSUPPORTED_ROOM_VERSION: 400,
  M_BAD_JSON: 400,
  M_INVALID_PARAM: 400,
  M_MISSING_PARAM: 400,
  M_LIMIT_EXCEEDED: 429,
  M_UNAUTHORIZED: 401,
};

type Ok<R> = Exclude<R, CommandError>;

@Injectable()
export class StateResolverCommands {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
  ) {}

  makeMembership(command: MakeMembershipCommand): Promise<Ok<MakeMembershipReply>> {
    return this.call(this.topology.makeMembership.subjectFor(command.roomId), command);
  }

  sendMembership(command: SendMembershipCommand): Promise<Ok<SendMembershipReply>> {
    return this.call(this.topology.sendMembership.subjectFor(command.roomId), command);
  }

  receiveInvite(command: ReceiveInviteCommand): Promise<Ok<ReceiveInviteReply>> {
    return this.call(this.topology.receiveInvite.subjectFor(command.roomId), command);
  }

  /** A local event (the third-party invite exchange issues the inviter's invite). */
  createEvent(command: CreateEventCommand): Promise<Ok<CreateEventReply>> {
    return this.call(this.topology.createEvent.subjectFor(command.roomId), command);
  }

  private async call<Req, Res extends { ok: boolean }>(subject: CommandSubject<Req, Res>, request: Req): Promise<Ok<Res>> {
    let reply: Res;
    try {
      reply = await this.bus.request(subject, request);
    } catch (error) {
      if (error instanceof BusRequestError) throw new MatrixError(unansweredStatus(error), 'M_UNKNOWN', `The room service did not answer: ${error.message}`);
      throw error;
    }
    if (!reply.ok) {
      const refusal = reply as unknown as CommandError;
      const extra =
        refusal.errcode === 'M_INCOMPATIBLE_ROOM_VERSION' && 'room_version' in refusal
          ? { room_version: (refusal as { room_version?: unknown }).room_version }
          : refusal.errcode === 'M_LIMIT_EXCEEDED' && 'retry_after_ms' in refusal
            ? { retry_after_ms: (refusal as { retry_after_ms?: unknown }).retry_after_ms }
            : undefined;
      throw new MatrixError(refusal.status ?? STATUS_BY_ERRCODE[refusal.errcode] ?? 400, refusal.errcode, refusal.error, extra);
    }
    return reply as Ok<Res>;
  }
}
