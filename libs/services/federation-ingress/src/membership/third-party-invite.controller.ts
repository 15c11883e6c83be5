// `PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}` (signed by the invitee's server) and
// `PUT /_matrix/federation/v1/3pid/onbind` (called by an identity server, unsigned): see third-party-invites.ts.
import { Body, Controller, HttpCode, Param, Post, Put, Req, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { IngressAudit } from '../audit/ingress-audit';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import { notesOf, type IngressRequest } from '../federation-request';
import { KeyValidityError } from './key-validity';
import { ThirdPartyInvites } from './third-party-invites';

@Controller('_matrix/federation/v1')
@UseInterceptors(AuditReasonInterceptor)
export class ThirdPartyInviteController {
  constructor(
    private readonly invites: ThirdPartyInvites,
    private readonly audit: IngressAudit,
  ) {}

  @Put('exchange_third_party_invite/:roomId')
  @UseGuards(XMatrixGuard)
  async exchange(@Param('roomId') roomId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    try {
      await this.invites.exchange(this.invites.parseExchange(roomId, body), request.federationOrigin!);
    } catch (error) {
      if (error instanceof KeyValidityError) notesOf(request).reason = error.auditReason;
      throw error;
    }
    return {};
  }

  /**
   * Answered 200 once each invite was tried (the spec's answer); the outcome of each, failures with their reason,
   * is in this request's audit record (origin `identity-server`) and each exchange's own `out` record.
   */
  @Put('3pid/onbind')
  onbind(@Body() body: unknown, @Req() request: IngressRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    return this.bind(body, request, reply);
  }

  /** The spec says PUT; Sydent sends POST and Synapse serves only POST, so identity servers in use call this. */
  @Post('3pid/onbind')
  @HttpCode(200)
  onbindByPost(@Body() body: unknown, @Req() request: IngressRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    return this.bind(body, request, reply);
  }

  private async bind(@Body() body: unknown, @Req() request: IngressRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const notes = notesOf(request);
    notes.origin = 'identity-server';
    this.audit.track(request, reply);
    const outcomes = await this.invites.onbind(this.invites.parseOnbind(body));
    notes.details = { invites: outcomes.map((o) => ({ roomId: o.roomId, sender: o.sender, ok: o.ok, ...(o.error !== undefined ? { error: o.error } : {}) })) };
    if (outcomes.some((o) => !o.ok)) notes.reason = 'third_party_invite_exchange_failed';
    return {};
  }
}
