// `POST /account/deactivate` as one of the application service's users (as_token + `user_id=`): the
// AS is the user's authority, so no user-interactive auth is asked for.
import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { UserDeactivation } from './user-deactivation';

/** The `erase` flag of a deactivation body (absent: false). */
export function parseErase(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  if (typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) throw MatrixError.badJson('Body must be a JSON object');
  const erase = (body as { erase?: unknown }).erase;
  if (erase !== undefined && typeof erase !== 'boolean') throw MatrixError.badJson('erase must be a boolean');
  return erase === true;
}

/** The request path without its query (which may hold the access token), for the audit record. */
export const auditPath = (request: FastifyRequest): string => request.url.split('?')[0];

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class AccountDeactivationController {
  constructor(private readonly deactivation: UserDeactivation) {}

  @Post('account/deactivate')
  @HttpCode(200)
  async deactivate(@CurrentRequester() requester: Requester, @Body() body: unknown, @Req() request: FastifyRequest) {
    const erase = parseErase(body);
    await this.deactivation.deactivate(requester.service, requester.userId, { erase, method: 'POST', path: auditPath(request) });
    // No third-party identifiers are kept, so there is nothing to unbind.
    return { id_server_unbind_result: 'success' };
  }
}
