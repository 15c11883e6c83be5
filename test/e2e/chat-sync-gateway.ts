// One in-process fedgate for the client-server e2e files: chat-sync's client-server API and workers with the
// state-resolver (real SQLite store, EmbeddedBus), the test bridge as its first application service and any
// others the file needs. Kept beside the e2e files rather than in @fedgate/testing, which libs' own tests
// import (it would import @fedgate/platform back).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Provider } from '@nestjs/common';
import { CHAT_SYNC_PUSH_BACKOFF, ChatSyncModule, ChatSyncWorkersModule } from '@fedgate/chat-sync';
import { loadConfig } from '@fedgate/config';
import { buildPlatform, type Platform } from '@fedgate/platform';
import { startService, type RunningService } from '@fedgate/service-kit';
import { StateResolverModule } from '@fedgate/state-resolver';
import { TestBridge } from '@fedgate/testing';

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
  serverName: string;
  otherAppServices?: AppServiceRegistration[];
  /** Further config overrides (`limits`, …). */
  config?: Record<string, unknown>;
  /** AS pushes retried after 20-100 ms rather than the production backoff. */
  fastPushRetries?: boolean;
  /** Runs once the platform is built, before the service starts (to consume a bus subject, say). */
  onPlatform?: (platform: Platform) => Promise<unknown>;
}

export interface ChatSyncGateway {
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
  const { serverName } = options;
  const dataDir = await mkdtemp(path.join(tmpdir(), `fedgate-${options.name}-`));
  const bridge = await TestBridge.start({ homeserverUrl: 'http://127.0.0.1:9', serverName, prefix: 'rc', requestTimeoutMs: 10_000 });
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
      ...options.config,
    },
  });
  let platform!: Platform;
  const service = await startService(
    {
      name: `${options.name}-test`,
      clientServer: [ChatSyncModule],
      workers: [StateResolverModule, ChatSyncWorkersModule],
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
  return { call, ok };
}
