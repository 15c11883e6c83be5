// POST /_matrix/client/v1/appservice/{appserviceId}/ping: an application service asks the homeserver to
// ping it back, to check both directions of the connection work. An AS can answer pings and still refuse
// every transaction (a library reading the token from another place), so the answer also carries the
// push state (`org.fedgate.push`: ok, or failing with the last status and errcode) and the queue length.
import { Body, Controller, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceClient, AppServiceRequestError, pushStateWithQueue, readPushState } from '../push';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';

@Controller('_matrix/client/v1/appservice')
@UseGuards(AppServiceAuthGuard)
export class AppServicePingController {
  private readonly client = new AppServiceClient({ requestTimeoutMs: 30_000 });

  constructor(@Inject(STORE) private readonly store: Store) {}

  @Post(':appserviceId/ping')
  @HttpCode(200)
  async ping(@CurrentRequester() requester: Requester, @Param('appserviceId') appserviceId: string, @Body() body: unknown) {
    if (requester.service.id !== appserviceId) throw new MatrixError(403, 'M_FORBIDDEN', `the access token does not belong to application service ${appserviceId}`);
    if (requester.service.registration.url === null) throw new MatrixError(400, 'M_URL_NOT_SET', `application service ${appserviceId} has no url`);
    const transactionId = (body as { transaction_id?: unknown } | null)?.transaction_id;
    if (transactionId !== undefined && typeof transactionId !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'transaction_id must be a string');
    let durationMs: number;
    try {
      ({ durationMs } = await this.client.ping(requester.service.registration, transactionId));
    } catch (err) {
      // The push state rides along on failures too: a bridge library without a ping route answers 404.
      const push = await this.pushState(appserviceId);
      if (err instanceof AppServiceRequestError && err.status !== null) {
        throw new MatrixError(502, 'M_BAD_STATUS', `Ping returned status ${err.status}`, { status: err.status, body: err.message, ...push });
      }
      if (/TimeoutError|aborted due to timeout/i.test((err as Error).message)) throw new MatrixError(504, 'M_CONNECTION_TIMEOUT', 'the application service did not answer the ping in time', push);
      throw new MatrixError(502, 'M_CONNECTION_FAILED', `could not reach the application service: ${(err as Error).message}`, push);
    }
    return { duration_ms: durationMs, ...(await this.pushState(appserviceId)) };
  }

  private async pushState(appServiceId: string): Promise<{ 'org.fedgate.push': Record<string, unknown> }> {
    const [state, pending] = await Promise.all([readPushState(this.store.audit, appServiceId), this.store.appServiceQueue.pendingCount(appServiceId)]);
    return { 'org.fedgate.push': { ...pushStateWithQueue(state, pending) } };
  }
}
