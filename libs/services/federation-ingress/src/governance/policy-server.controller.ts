// The policy server's endpoints: POST /_matrix/policy/v1/sign (X-Matrix authenticated) and the discovery
// document GET /.well-known/matrix/policy_server with the policy key (never the federation key).
import { Body, Controller, Get, HttpCode, type CanActivate, Injectable, Post, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { MatrixError } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import { notesOf, type IngressRequest } from '../federation-request';
import { ActivePolicy } from './active-policy';
import { PolicySigner } from './policy-signer';

/** A server that is no policy server answers as for any unknown endpoint, before authentication. */
@Injectable()
export class PolicyServerEnabledGuard implements CanActivate {
  constructor(private readonly active: ActivePolicy) {}

  canActivate(): boolean {
    if (!this.active.enabled) throw MatrixError.unrecognized();
    return true;
  }
}

@Controller()
export class PolicyServerController {
  constructor(
    private readonly active: ActivePolicy,
    private readonly signer: PolicySigner,
  ) {}

  @Post('_matrix/policy/v1/sign')
  @HttpCode(200)
  @UseGuards(PolicyServerEnabledGuard, XMatrixGuard)
  @UseInterceptors(AuditReasonInterceptor)
  async sign(@Body() body: unknown, @Req() request: IngressRequest): Promise<Record<string, Record<string, string>>> {
    const { result, audit } = await this.signer.sign(request.federationOrigin!, body);
    const notes = notesOf(request);
    notes.policy = audit;
    if ('error' in result) {
      notes.reason = audit.rule ?? result.error.errcode;
      throw result.error;
    }
    return result.signatures;
  }

  @Get('.well-known/matrix/policy_server')
  @UseGuards(PolicyServerEnabledGuard)
  wellKnown(): { public_keys: { ed25519: string } } {
    return { public_keys: { ed25519: this.active.key!.publicKeyBase64 } };
  }
}
