// A minimal "other server" on loopback HTTPS for negative federation tests: it publishes its own
// signing key at /_matrix/key/v2/server, answers anything else with `{}` (recording it), and sends
// X-Matrix-signed requests to a fedgate — correctly signed, or wrongly on purpose.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { buildServerKeyDocument, buildXMatrixHeader, generateSigningKey, type SigningKey } from '@fedgate/protocol';
import { issueServerCertificate, type TestCertificateAuthority } from '../tls';

export interface RecordedRequest {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

export interface SignedRequestOptions {
  /** Sign with this key instead of ours (e.g. one the server never published). */
  key?: SigningKey;
  /** Claim to be this server in the header. */
  origin?: string;
  /** Send this text as the body instead of JSON of `body`. */
  rawBody?: string;
  /** Tamper with the signature after signing. */
  corruptSignature?: boolean;
}

export class FakeRemoteServer {
  readonly received: RecordedRequest[] = [];
  readonly signingKey: SigningKey = generateSigningKey();
  private serverNameValue = '';
  private readonly server: Server;
  private readonly dispatcher: Agent;

  private constructor(ca: TestCertificateAuthority) {
    const certificate = issueServerCertificate(ca);
    this.dispatcher = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
    this.server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET' && req.url === '/_matrix/key/v2/server') {
          res.end(JSON.stringify(buildServerKeyDocument({ serverName: this.serverName, keys: [this.signingKey], validUntilTs: Date.now() + 3_600_000 })));
          return;
        }
        this.received.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
        res.end('{}');
      });
    });
  }

  /** `<host>:<port>`. */
  get serverName(): string {
    return this.serverNameValue;
  }

  /** `host` names the server: `localhost` (default) or an IP literal such as `127.0.0.1` (for ACL tests). */
  static async start(ca: TestCertificateAuthority, host = 'localhost'): Promise<FakeRemoteServer> {
    const remote = new FakeRemoteServer(ca);
    await new Promise<void>((resolve, reject) => {
      remote.server.once('error', reject);
      remote.server.listen(0, '::', () => resolve());
    });
    remote.serverNameValue = `${host}:${(remote.server.address() as AddressInfo).port}`;
    return remote;
  }

  /** A federation request to `destination` (`localhost:<port>`), signed as this server unless told otherwise. */
  async send(destination: string, method: 'GET' | 'PUT' | 'POST', uri: string, body?: unknown, options: SignedRequestOptions = {}): Promise<{ status: number; json: any }> {
    const origin = options.origin ?? this.serverName;
    const key = options.key ?? this.signingKey;
    let authorization = buildXMatrixHeader({ method, uri, origin, destination, content: body }, key);
    if (options.corruptSignature) authorization = authorization.replace(/sig="(.)/, (_, c: string) => `sig="${c === 'A' ? 'B' : 'A'}`);
    const payload = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
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

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.dispatcher.close();
  }
}
