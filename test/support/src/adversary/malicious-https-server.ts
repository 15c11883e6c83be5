// The malicious homeserver over the wire, for end-to-end tests against whole gateways: HTTPS on loopback with a
// certificate from the test CA, its key document at /_matrix/key/v2/server, every other federation request
// answered by MaliciousServer (honest unless a lie is scripted), /send transactions recorded, and signed
// requests of its own (make_join, send_join, /send) to a fedgate.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { buildServerKeyDocument, buildXMatrixHeader, computeEventId, parseXMatrixHeader, type Pdu } from '@fedgate/protocol';
import { stateMapKey } from '@fedgate/room-state';
import { issueServerCertificate, type TestCertificateAuthority } from '../tls';
import { MaliciousServer, type EventFields, type SignedEvent } from './malicious-server';

export interface ReceivedTransaction {
  origin: string;
  txnId: string;
  pdus: Record<string, unknown>[];
  edus: Record<string, unknown>[];
}

/** A room as this server learnt it from a send_join answer: its version and state, to build lies on. */
export interface JoinedRoom {
  roomId: string;
  roomVersion: string;
  join: SignedEvent;
  /** `type\0state_key` → event ID, the state after our join. */
  state: Map<string, string>;
}

/** A request this server got, for `intercept`: answer it (or return undefined to let MaliciousServer answer). */
export interface InterceptedRequest {
  from: string;
  method: string;
  path: string;
  body: unknown;
  /** When the request's headers arrived (before its body was read and parsed): a receiver's own delays excluded. */
  receivedAt: number;
}

export class MaliciousHttpsServer {
  readonly transactions: ReceivedTransaction[] = [];
  /** Endpoints beyond the federation API (e.g. `/_matrix/policy/v1/sign` of an in-test policy server). */
  intercept?: (request: InterceptedRequest) => Promise<{ status: number; body: unknown } | undefined>;
  private readonly dispatcher: Agent;

  private constructor(
    readonly evil: MaliciousServer,
    private readonly server: Server,
    ca: TestCertificateAuthority,
  ) {
    this.dispatcher = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
  }

  /**
   * Listens on loopback; the server is named `<host>:<port>` (`localhost` by default, or an IP literal). Many servers
   * may share one `certificate` (issuing one costs an RSA key pair; the load generator starts a thousand).
   */
  static async start(ca: TestCertificateAuthority, host = 'localhost', certificate = issueServerCertificate(ca)): Promise<MaliciousHttpsServer> {
    const holder: { self?: MaliciousHttpsServer } = {};
    const server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (req, res) => {
      const receivedAt = Date.now();
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        void holder.self!.handle(req, body, receivedAt).then(({ status, body: answer }) => {
          res.statusCode = status;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(answer));
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::', () => resolve());
    });
    const name = `${host}:${(server.address() as AddressInfo).port}`;
    holder.self = new MaliciousHttpsServer(MaliciousServer.detached(name), server, ca);
    return holder.self;
  }

  get name(): string {
    return this.evil.name;
  }

  /** A federation request to `destination`, X-Matrix-signed as this server. */
  async request(destination: string, method: 'GET' | 'PUT' | 'POST', uri: string, body?: unknown): Promise<{ status: number; json: any }> {
    const authorization = buildXMatrixHeader({ method, uri, origin: this.name, destination, content: body }, this.evil.key);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await request(`https://${destination}${uri}`, {
      method,
      body: payload,
      headers: { authorization, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      dispatcher: this.dispatcher,
    });
    const text = await res.body.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = { raw: text };
    }
    return { status: res.statusCode, json };
  }

  /** Joins `localpart` to a fedgate's room: make_join, sign (after `tamper`), send_join v2. */
  async joinRoom(destination: string, roomId: string, localpart = 'mallory', tamper: (template: Record<string, unknown>) => Record<string, unknown> = (t) => t): Promise<JoinedRoom> {
    const userId = this.evil.user(localpart);
    const versions = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'].map((v) => `ver=${v}`).join('&');
    const made = await this.request(destination, 'GET', `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}?${versions}`);
    if (made.status !== 200) throw new Error(`make_join: ${made.status} ${JSON.stringify(made.json)}`);
    const roomVersion = String(made.json.room_version);
    const join = this.evil.sign(tamper({ ...made.json.event, origin_server_ts: Date.now() }) as EventFields, roomVersion);
    const sent = await this.request(destination, 'PUT', `/_matrix/federation/v2/send_join/${encodeURIComponent(roomId)}/${encodeURIComponent(join.eventId)}`, join.pdu);
    if (sent.status !== 200) throw new Error(`send_join: ${sent.status} ${JSON.stringify(sent.json)}`);
    const pdus = [...(sent.json.state as Record<string, unknown>[]), ...(sent.json.auth_chain as Record<string, unknown>[])];
    this.evil.learn(pdus, roomVersion);
    const state = new Map<string, string>();
    for (const raw of sent.json.state as Record<string, unknown>[]) {
      const { unsigned: _u, ...pdu } = raw;
      if (typeof raw.state_key === 'string') state.set(stateMapKey(String(raw.type), raw.state_key), computeEventId(pdu, roomVersion));
    }
    state.set(stateMapKey('m.room.member', userId), join.eventId);
    return { roomId, roomVersion, join, state };
  }

  /** One /send transaction of `events` to `destination`; the answer's per-PDU results. */
  async sendPdus(destination: string, events: readonly SignedEvent[], txnId = `t${Date.now()}${Math.random().toString(36).slice(2)}`) {
    return this.request(destination, 'PUT', `/_matrix/federation/v1/send/${txnId}`, { origin: this.name, origin_server_ts: Date.now(), pdus: events.map((e) => e.pdu as Pdu) });
  }

  /** How long an idle keep-alive connection stays open (Node's default, 5 s, is short of a fan-out to a thousand). */
  set keepAliveTimeoutMs(ms: number) {
    this.server.keepAliveTimeout = ms;
  }

  /** New session-ticket keys: a peer's next connection cannot resume a TLS session from before (a full handshake). */
  forgetTlsSessions(): void {
    this.server.setTicketKeys(randomBytes(48));
  }

  /** Connections open to this server now (a peer's kept-alive ones included). */
  openConnections(): Promise<number> {
    return new Promise((resolve, reject) => this.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
  }

  /** Closes the connections with no request in progress: a peer's next request connects again. */
  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.dispatcher.close();
  }

  private async handle(req: IncomingMessage, raw: string, receivedAt = Date.now()): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'https://x');
    if (req.method === 'GET' && url.pathname === '/_matrix/key/v2/server') {
      return { status: 200, body: buildServerKeyDocument({ serverName: this.name, keys: [this.evil.key], validUntilTs: Date.now() + 3_600_000 }) };
    }
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return { status: 400, body: { errcode: 'M_NOT_JSON', error: 'not JSON' } };
    }
    let from = '';
    try {
      from = parseXMatrixHeader(req.headers.authorization ?? '').origin;
    } catch {
      // answered anyway: this server checks nothing
    }
    const intercepted = await this.intercept?.({ from, method: req.method ?? 'GET', path: url.pathname, body, receivedAt });
    if (intercepted) return intercepted;
    const segments = url.pathname.split('/').slice(3).map(decodeURIComponent);
    if (segments[1] === 'send' && req.method === 'PUT') {
      const t = (body ?? {}) as { pdus?: Record<string, unknown>[]; edus?: Record<string, unknown>[] };
      this.transactions.push({ origin: from, txnId: segments[2] ?? '', pdus: t.pdus ?? [], edus: t.edus ?? [] });
      return { status: 200, body: { pdus: {} } };
    }
    const query: Record<string, unknown> = {};
    for (const key of new Set(url.searchParams.keys())) {
      const values = url.searchParams.getAll(key);
      query[key] = values.length === 1 ? values[0] : values;
    }
    return this.evil.answer({ from, method: req.method as 'GET' | 'PUT' | 'POST', path: url.pathname, segments, query, body });
  }
}
