// One in-process fedgate for the client-server e2e files: chat-sync's client-server API and workers with the
// state-resolver (real SQLite store, EmbeddedBus), the test bridge as its first application service and any
// others the file needs; federation ingress over HTTPS too when the file asks. Kept beside the e2e files rather
// than in @fedgate/testing, which libs' own tests import (it would import @fedgate/platform back).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Provider } from '@nestjs/common';
import { CHAT_SYNC_PUSH_BACKOFF, ChatSyncModule, ChatSyncWorkersModule } from '@fedgate/chat-sync';
import { loadConfig } from '@fedgate/config';
import { FederationIngressModule } from '@fedgate/federation-ingress';
import { buildPlatform, type Platform } from '@fedgate/platform';
import { startService, type RunningService } from '@fedgate/service-kit';
import { StateResolverModule } from '@fedgate/state-resolver';
import { findFreePort, issueServerCertificate, TestBridge, writeServerCertificate, writeTestCa, type TestCertificateAuthority } from '@fedgate/testing';

/** Another application service's registration (the bridge's is written by the bridge). */
export interface AppServiceRegistration {
  id: string;
  asToken: string;
  hsToken: string;
  senderLocalpart: string;
  users: Array<{ exclusive: boolean; regex: string }>;
  aliases?: Array<{ exclusive: boolean; regex: string }>;
}

export interface ChatSyncGatewayOptions {
  /** The service's name, also naming its temporary data directory. */
  name: string;
  /** Required without `federation`; with it the name is `localhost:<federation port>`. */
  serverName?: string;
  /** Serve federation too (ingress only), over HTTPS with a certificate from `ca`, trusting only `ca`. */
  federation?: { ca: TestCertificateAuthority };
  /** The test bridge's user prefix (default `rc`) and registration ID. */
  bridge?: { prefix: string; id?: string };
  /** Run the state-resolver and chat-sync workers (default true). */
  workers?: boolean;
  otherAppServices?: AppServiceRegistration[];
  /** Further config overrides (`limits`, …). */
  config?: Record<string, unknown>;
  /** AS pushes retried after 20-100 ms rather than the production backoff. */
  fastPushRetries?: boolean;
  /** Runs once the platform is built, before the service starts (to consume a bus subject, say). */
  onPlatform?: (platform: Platform) => Promise<unknown>;
}

export interface ChatSyncGateway {
  serverName: string;
  dataDir: string;
  bridge: TestBridge;
  service: RunningService;
  platform: Platform;
  /** The client-server API's base URL. */
  base: string;
  /** The bridge's AS token. */
  token: string;
  close(): Promise<void>;
}

export async function startChatSyncGateway(options: ChatSyncGatewayOptions): Promise<ChatSyncGateway> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `fedgate-${options.name}-`));
  const federationPort = options.federation ? await findFreePort() : undefined;
  const serverName = federationPort === undefined ? options.serverName : `localhost:${federationPort}`;
  if (!serverName) throw new Error('startChatSyncGateway: a serverName, or federation');
  const bridge = await TestBridge.start({ homeserverUrl: 'http://127.0.0.1:9', serverName, prefix: options.bridge?.prefix ?? 'rc', id: options.bridge?.id, requestTimeoutMs: 10_000 });
  const registrationFiles = [bridge.registrationPath];
  for (const other of options.otherAppServices ?? []) {
    const file = path.join(dataDir, `${other.id}-registration.yaml`);
    // JSON is YAML: no escaping of the regexes by hand.
    const registration = { id: other.id, url: null, as_token: other.asToken, hs_token: other.hsToken, sender_localpart: other.senderLocalpart, namespaces: { users: other.users, aliases: other.aliases ?? [], rooms: [] } };
    await writeFile(file, `${JSON.stringify(registration, null, 2)}\n`);
    registrationFiles.push(file);
  }
  const config = loadConfig({
    env: {},
    argv: [],
    cwd: dataDir,
    overrides: {
      serverName,
      dataDir,
      clientServer: { enabled: true, bindAddress: '127.0.0.1', port: 0 },
      appServices: { registrationFiles },
      log: { level: 'warn' },
      ...(options.federation ? await federationConfig(options.federation.ca, federationPort!, dataDir) : {}),
      ...options.config,
    },
  });
  let platform!: Platform;
  const service = await startService(
    {
      name: `${options.name}-test`,
      clientServer: [ChatSyncModule],
      ...(options.federation ? { federation: [FederationIngressModule] } : {}),
      ...(options.workers === false ? {} : { workers: [StateResolverModule, ChatSyncWorkersModule] }),
      shared: async (context) => {
        platform = await buildPlatform(context);
        await options.onPlatform?.(platform);
        const fastRetries: Provider[] = options.fastPushRetries ? [{ provide: CHAT_SYNC_PUSH_BACKOFF, useValue: { initialDelayMs: 20, maxDelayMs: 100 } }] : [];
        return { providers: [...platform.providers, ...fastRetries], close: () => platform.close() };
      },
    },
    { config, handleSignals: false, printReadyLine: false },
  );
  const base = service.clientServerUrl!;
  bridge.connect({ homeserverUrl: base, serverName });
  return {
    serverName,
    dataDir,
    bridge,
    service,
    platform,
    base,
    token: bridge.registration.as_token,
    async close() {
      await service.close();
      await bridge.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Federation on loopback HTTPS at `port`: a certificate from the test CA, which is the only CA trusted. */
async function federationConfig(ca: TestCertificateAuthority, port: number, dataDir: string): Promise<Record<string, unknown>> {
  const caFiles = await writeTestCa(ca, path.join(dataDir, 'tls'));
  const certFiles = await writeServerCertificate(issueServerCertificate(ca), path.join(dataDir, 'tls'));
  return {
    federation: { bindAddress: '::', port, allowPrivateAddresses: false, addressAllowlist: ['127.0.0.0/8', '::1/128'] },
    tls: { cert: certFiles.certPath, key: certFiles.keyPath, ca: [caFiles.certPath] },
    egress: { requestTimeoutMs: 10_000 },
  };
}

export interface ClientAnswer {
  status: number;
  body: Record<string, any>;
}

/**
 * Calls of the client-server API at `base()` (read at each call: the gateway starts in a beforeAll). `call`
 * answers whatever came back; `ok` insists on 200 and answers the body. A string body is sent as it is.
 */
export function clientServerCalls(base: () => string) {
  const call = async (method: string, pathAndQuery: string, token: string | null, body?: unknown): Promise<ClientAnswer> => {
    const response = await fetch(`${base()}${pathAndQuery}`, {
      method,
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
  };
  const ok = async (method: string, pathAndQuery: string, token: string, body?: unknown): Promise<Record<string, any>> => {
    const answer = await call(method, pathAndQuery, token, body);
    if (answer.status !== 200) throw new Error(`${method} ${pathAndQuery}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  return { call, ok, ...appServiceUserCalls(ok) };
}

type Ok = (method: string, pathAndQuery: string, token: string, body?: unknown) => Promise<Record<string, any>>;

/** Calls an application service makes as one of its users (`user_id=`), with the token given. */
function appServiceUserCalls(ok: Ok) {
  const enc = encodeURIComponent;
  const as = (userId: string) => `user_id=${enc(userId)}`;
  return {
    as,
    /** The path with `user_id=` appended to its query. */
    withUser: (pathAndQuery: string, userId: string) => `${pathAndQuery}${pathAndQuery.includes('?') ? '&' : '?'}${as(userId)}`,
    register: async (localpart: string, token: string) => (await ok('POST', '/_matrix/client/v3/register', token, { type: 'm.login.application_service', username: localpart })).user_id as string,
    createRoom: async (userId: string, token: string, body: Record<string, unknown>) => (await ok('POST', `/_matrix/client/v3/createRoom?${as(userId)}`, token, body)).room_id as string,
    /** A text message under a transaction ID of its own; answers the event ID. */
    send: async (roomId: string, userId: string, token: string, text: string) =>
      (await ok('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${enc(text)}-${Date.now()}?${as(userId)}`, token, { msgtype: 'm.text', body: text })).event_id as string,
  };
}

export const BOT_TOKEN = 'as-token-of-the-bot';

/**
 * The second tenant of the two-tenant files: a bot whose NON-exclusive `@.*` / `#.*` namespace covers every
 * user and alias of the server, the bridge's too (an exclusive claim wins, so it may not act as them).
 */
export function botRegistration(serverName: string): AppServiceRegistration {
  const server = serverName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    id: 'bot',
    asToken: BOT_TOKEN,
    hsToken: 'hs-token-of-the-bot',
    senderLocalpart: 'helperbot',
    users: [{ exclusive: false, regex: `@.*:${server}` }],
    aliases: [{ exclusive: false, regex: `#.*:${server}` }],
  };
}
