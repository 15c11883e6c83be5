// An ingress module on a real HTTPS socket with the real SQLite store and EmbeddedBus, and a remote server
// (a signing key served by a loopback HTTPS key server) that signs requests to it.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { busOptionsFor, busTopology, EmbeddedBus, type BusTopology } from '@fedgate/bus';
import type { FedgateConfig } from '@fedgate/config';
import { FederationHttpClient, FederationHttpError, StoreKeyRing, type KeyRing, type RequestSigner } from '@fedgate/federation-client';
import { BUS, BUS_TOPOLOGY, KEY_RING, SERVER_IDENTITY, STORE, type ServerIdentity } from '@fedgate/platform';
import { buildServerKeyDocument, buildXMatrixHeader, computeEventId, generateSigningKey, signEvent, type JsonObject, type SigningKey } from '@fedgate/protocol';
import { createHttpApp, listenHttpApp, serviceRootModule } from '@fedgate/service-kit';
import { openSqliteStore, stateTupleKey, type AuditRecord, type Store } from '@fedgate/store';
import { createTestCa, issueServerCertificate, type TestCertificateAuthority } from '@fedgate/testing';
import pino from 'pino';
import { FederationIngressModule } from '../federation-ingress.module';
import type { IngressOptions } from '../ingress-options';

export const INGRESS_NAME = 'ingress.test';
export const ROOM_VERSION = '10';

export interface RemoteServer {
  serverName: string;
  key: SigningKey;
  /** A client that signs as this server (or as `sign` says) and routes ingress.test to the ingress socket. */
  client(sign?: RequestSigner): FederationHttpClient;
  /** A user ID on this server. */
  user(localpart: string): string;
}

export interface IngressHarness {
  store: Store;
  bus: EmbeddedBus;
  topology: BusTopology;
  identity: ServerIdentity;
  remote: RemoteServer;
  /** A second remote server (for ACL cases). */
  other: RemoteServer;
  federationUrl: string;
  /** The Nest app, to reach providers (metrics). */
  app: NestFastifyApplication;
  close(): Promise<void>;
}

const logger = pino({ level: 'silent' });

export interface IngressHarnessOverrides {
  /** Replaces the key ring (built over the harness's store). */
  keyRing?: (store: Store) => KeyRing;
  /** Settings beside the harness's own (e.g. thirdPartyInvites). */
  config?: Partial<FedgateConfig>;
}

export async function startIngress(options: Partial<IngressOptions> = {}, overrides: IngressHarnessOverrides = {}): Promise<IngressHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-ingress-'));
  const ca: TestCertificateAuthority = createTestCa('ingress test CA');
  const cert = issueServerCertificate(ca, [INGRESS_NAME]);
  const store = openSqliteStore(path.join(dir, 'store.sqlite'));
  const topology = busTopology({ prefix: 'ingresstest' });
  const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 20 });
  await bus.start();
  const ownKey = generateSigningKey('ingress');
  const identity: ServerIdentity = { serverName: INGRESS_NAME, signingKey: ownKey, allKeys: [ownKey] };
  const keyFetcher = new FederationHttpClient({ ca: ca.certPem, addressPolicy: { allow: ['127.0.0.0/8'] } });
  const keyRing =
    overrides.keyRing?.(store) ?? new StoreKeyRing({ serverKeys: store.serverKeys, fetcher: keyFetcher, ownServerName: INGRESS_NAME, ownKeys: () => identity.allKeys });

  const runtime = {
    config: { ...overrides.config, serverName: INGRESS_NAME, dataDir: dir, limits: { maxUploadBytes: 1024 * 1024 } } as FedgateConfig,
    logger,
    sharedProviders: [
      { provide: STORE, useValue: store },
      { provide: BUS, useValue: bus },
      { provide: BUS_TOPOLOGY, useValue: topology },
      { provide: SERVER_IDENTITY, useValue: identity },
      { provide: KEY_RING, useValue: keyRing },
    ],
  };
  const listener = { name: 'federation', bindAddress: '127.0.0.1', port: 0, tls: { cert: cert.certPem, key: cert.keyPem }, maxBodyBytes: 12 * 1024 * 1024 };
  const app: NestFastifyApplication = await createHttpApp({ module: serviceRootModule(runtime, [FederationIngressModule.withOptions(options)]), listener, logger });
  const federationUrl = await listenHttpApp(app, listener);
  const ingressPort = Number(new URL(federationUrl).port);

  const keyServers: Server[] = [];
  const clients: FederationHttpClient[] = [keyFetcher];
  async function remoteServer(): Promise<RemoteServer> {
    const key = generateSigningKey('remote');
    const server = createServer({ cert: cert.certPem, key: cert.keyPem });
    keyServers.push(server);
    let serverName = '';
    server.on('request', (req, res) => {
      const body = req.url === '/_matrix/key/v2/server' ? buildServerKeyDocument({ serverName, keys: [key], validUntilTs: Date.now() + 86_400_000 }) : { errcode: 'M_UNRECOGNIZED', error: 'no' };
      res.writeHead(req.url === '/_matrix/key/v2/server' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    serverName = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const signAs: RequestSigner = (method, uri, destination, content) => buildXMatrixHeader({ method, uri, origin: serverName, destination, content }, key);
    return {
      serverName,
      key,
      user: (localpart) => `@${localpart}:${serverName}`,
      client: (sign = signAs) => {
        const client = new FederationHttpClient({
          ca: ca.certPem,
          addressPolicy: { allow: ['127.0.0.0/8'] },
          signRequest: sign,
          resolveServerName: async () => [{ connectHost: '127.0.0.1', port: ingressPort, hostHeader: INGRESS_NAME, tlsServerName: INGRESS_NAME }],
        });
        clients.push(client);
        return client;
      },
    };
  }
  const remote = await remoteServer();
  const other = await remoteServer();

  return {
    store,
    bus,
    topology,
    identity,
    remote,
    other,
    federationUrl,
    app,
    close: async () => {
      await app.close();
      await Promise.all(clients.map((c) => c.close()));
      for (const server of keyServers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await bus.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A signed event of a room version 10 room, and its ID. */
export function signedEvent(fields: JsonObject, serverName: string, key: SigningKey): { eventId: string; pdu: JsonObject } {
  const pdu = signEvent({ origin_server_ts: Date.now(), depth: 1, prev_events: [], auth_events: [], content: {}, ...fields }, ROOM_VERSION, serverName, key) as JsonObject;
  return { eventId: computeEventId(pdu, ROOM_VERSION), pdu };
}

/**
 * A room this server knows: the create event and the members given (by ingress's key), and a message by each
 * member, with state snapshots recorded for every event so visibility checks can run.
 */
export async function seedRoom(h: IngressHarness, roomId: string, members: string[], extraState: JsonObject[] = []): Promise<{ eventIds: string[]; stateEventIds: Map<string, string> }> {
  const creator = `@creator:${INGRESS_NAME}`;
  await h.store.rooms.ensure({ roomId, roomVersion: ROOM_VERSION, creator, createdTs: Date.now() });
  const state = new Map<string, string>();
  const eventIds: string[] = [];
  let prev: string[] = [];
  let depth = 1;
  const append = async (fields: JsonObject, signer: { serverName: string; key: SigningKey } = { serverName: INGRESS_NAME, key: h.identity.signingKey }) => {
    const { eventId, pdu } = signedEvent({ room_id: roomId, depth, prev_events: prev, auth_events: [...state.values()].slice(0, 10), ...fields }, signer.serverName, signer.key);
    const before = await h.store.state.save(roomId, new Map(state));
    if (typeof fields.state_key === 'string') state.set(stateTupleKey(fields.type as string, fields.state_key), eventId);
    const after = await h.store.state.save(roomId, new Map(state));
    await h.store.events.append({
      eventId,
      roomId,
      type: fields.type as string,
      ...(typeof fields.state_key === 'string' ? { stateKey: fields.state_key } : {}),
      depth,
      prevEventIds: prev,
      authEventIds: pdu.auth_events as string[],
      pdu: pdu as never,
      status: 'accepted',
      outlier: false,
      receivedTs: Date.now(),
    });
    await h.store.state.setForEvent(eventId, { before, after });
    await h.store.rooms.setCurrentState(roomId, after);
    eventIds.push(eventId);
    prev = [eventId];
    depth++;
    return eventId;
  };
  await append({ type: 'm.room.create', state_key: '', sender: creator, content: { room_version: ROOM_VERSION } });
  await append({ type: 'm.room.member', state_key: creator, sender: creator, content: { membership: 'join' } });
  await append({ type: 'm.room.join_rules', state_key: '', sender: creator, content: { join_rule: 'public' } });
  await append({ type: 'm.room.history_visibility', state_key: '', sender: creator, content: { history_visibility: 'shared' } });
  for (const fields of extraState) await append({ sender: creator, ...fields });
  for (const member of members) {
    const server = member.slice(member.indexOf(':') + 1);
    const signer = server === h.remote.serverName ? { serverName: server, key: h.remote.key } : server === h.other.serverName ? { serverName: server, key: h.other.key } : undefined;
    await append({ type: 'm.room.member', state_key: member, sender: member, content: { membership: 'join' } }, signer);
  }
  const servers = new Set([INGRESS_NAME, ...members.map((m) => m.slice(m.indexOf(':') + 1))]);
  await h.store.rooms.setJoinedServers(roomId, [...servers]);
  await append({ type: 'm.room.message', sender: creator, content: { msgtype: 'm.text', body: 'hello' } });
  return { eventIds, stateEventIds: state };
}

/** The audit records (newest first) once one matching `predicate` is there; audit is written when the response is sent. */
export async function auditOnceRecorded(store: Store, predicate: (r: AuditRecord) => boolean): Promise<AuditRecord> {
  for (;;) {
    const found = (await store.audit.query({ direction: 'in', limit: 1000 })).find(predicate);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The error a request to the ingress was refused with; fails the test when it was answered. */
export async function refusedWith(promise: Promise<unknown>): Promise<FederationHttpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FederationHttpError) return error;
    throw error;
  }
  throw new Error('expected the request to be refused');
}

/** A refusal's status and errcode, what most tests compare. */
export async function refusal(promise: Promise<unknown>): Promise<{ status: number; errcode: string | undefined }> {
  const error = await refusedWith(promise);
  return { status: error.status, errcode: error.errcode };
}
