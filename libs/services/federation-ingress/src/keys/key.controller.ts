// Key endpoints (unauthenticated): our own key document, and notary answers for other servers' keys.
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { KeyRingCaller } from '@fedgate/federation-client';
import { KEY_RING, SERVER_IDENTITY, STORE, type KeyRing, type ServerIdentity, type Store } from '@fedgate/platform';
import { buildServerKeyDocument, isValidServerName, signJson, type OldVerifyKey } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { INGRESS_OPTIONS, type IngressOptions } from '../ingress-options';

type Criteria = Record<string, { minimum_valid_until_ts?: unknown } | undefined>;

function clientGone(request: FastifyRequest): boolean {
  return request.raw.socket?.destroyed !== false;
}

@Controller('_matrix/key/v2')
export class KeyController {
  constructor(
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    @Inject(STORE) private readonly store: Store,
    @Inject(INGRESS_OPTIONS) private readonly options: IngressOptions,
  ) {}

  @Get('server')
  async server(): Promise<Record<string, unknown>> {
    return this.ownDocument();
  }

  @Post('query')
  @HttpCode(200)
  async query(@Body() body: unknown, @Req() request: FastifyRequest): Promise<{ server_keys: Record<string, unknown>[] }> {
    const serverKeys = (body as { server_keys?: unknown } | null)?.server_keys;
    if (serverKeys === null || typeof serverKeys !== 'object' || Array.isArray(serverKeys)) throw MatrixError.badJson('server_keys must be an object');
    const servers = Object.entries(serverKeys as Record<string, Criteria>);
    if (servers.length > this.options.maxNotaryQueryServers) {
      throw MatrixError.invalidParam(`server_keys names ${servers.length} servers; at most ${this.options.maxNotaryQueryServers} are answered per query`);
    }
    const caller = { clientAddress: request.ip };
    const answers: Record<string, unknown>[] = [];
    for (const [serverName, criteria] of servers) {
      // A client that has gone gets no answer: stop fetching for it.
      if (clientGone(request)) break;
      const minimum = Object.values(criteria !== null && typeof criteria === 'object' ? criteria : {})
        .map((c) => c?.minimum_valid_until_ts)
        .filter((ts): ts is number => typeof ts === 'number');
      answers.push(...(await this.documentsFor(serverName, minimum.length ? Math.max(...minimum) : undefined, caller)));
    }
    return { server_keys: answers };
  }

  @Get('query/:serverName')
  async queryOne(
    @Param('serverName') serverName: string,
    @Req() request: FastifyRequest,
    @Query('minimum_valid_until_ts') minimum?: string,
  ): Promise<{ server_keys: Record<string, unknown>[] }> {
    const ts = minimum === undefined ? undefined : Number(minimum);
    if (ts !== undefined && !Number.isSafeInteger(ts)) throw MatrixError.invalidParam('minimum_valid_until_ts must be an integer');
    return { server_keys: await this.documentsFor(serverName, ts, { clientAddress: request.ip }) };
  }

  /** A server's documents as it signed them, with our signature added; our own document as is. */
  private async documentsFor(serverName: string, minimumValidUntilTs: number | undefined, caller: KeyRingCaller): Promise<Record<string, unknown>[]> {
    if (!isValidServerName(serverName)) return [];
    if (serverName === this.identity.serverName) return [await this.ownDocument()];
    const documents = (await this.keyRing.serverKeyDocuments?.(serverName, minimumValidUntilTs, caller)) ?? [];
    return documents.map((document) => signJson(document, this.identity.serverName, this.identity.signingKey));
  }

  private async ownDocument(): Promise<Record<string, unknown>> {
    const current = new Set(this.identity.allKeys.map((k) => k.keyId));
    const oldVerifyKeys: OldVerifyKey[] = (await this.store.serverKeys.listOwn())
      .filter((k) => k.expiredTs !== null && !current.has(k.keyId))
      .map((k) => ({ keyId: k.keyId, key: k.publicKey, expiredTs: k.expiredTs! }));
    return buildServerKeyDocument({
      serverName: this.identity.serverName,
      keys: this.identity.allKeys.length ? this.identity.allKeys : [this.identity.signingKey],
      validUntilTs: Date.now() + this.options.keyValidityMs,
      oldVerifyKeys,
    });
  }
}
