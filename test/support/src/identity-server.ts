// An identity server for third-party invite tests, speaking the identity service API v2 that homeservers and
// clients call: account/register (from an OpenID token the user's homeserver vouches for), terms, hash_details and
// lookup (`none` and `sha256`), store-invite (a long-term and an ephemeral key per invite), the key validity checks
// (`/pubkey/isvalid`, `/pubkey/ephemeral/isvalid`, `/pubkey/{keyId}`); and, once an address is bound, the onbind call
// to the bound user's server with each pending invite signed by its key.
// Plain HTTP by default (for fedgate, which routes an identity server's name to its baseUrl); with `tls`, HTTPS on
// loopback with a test-CA certificate, named `localhost:<port>`, which is what a homeserver such as Synapse dials at
// `https://<id_server>`.
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { signJson, SigningKey } from '@fedgate/protocol';
import { issueServerCertificate, type TestCertificateAuthority } from './tls';

export interface OnbindOptions {
  medium?: string;
  /** Defaults to POST, what Sydent sends and Synapse serves; the spec says PUT. */
  method?: 'PUT' | 'POST';
  /** Signs the invites with this key instead of the server's own: a lying or stale identity server. */
  signingKey?: SigningKey;
  /** The CA the bound user's server is certified by; defaults to the one given in `tls`. */
  caPem?: string;
}

export interface TestIdentityServer {
  /** For a homeserver's `thirdPartyInvites.identityServers[].baseUrl`. */
  readonly baseUrl: string;
  /** The `id_server` clients name: `id.example` over plain HTTP, `localhost:<port>` with `tls`. */
  readonly serverName: string;
  readonly key: SigningKey;
  /** `"<address> <medium>"` → Matrix ID: what lookup answers as bound. */
  readonly bound: Map<string, string>;
  /** Every store-invite body received, in order. */
  readonly storedInvites: Array<Record<string, unknown>>;
  /** The token answered for each stored invite (same order as storedInvites). */
  readonly inviteTokens: string[];
  /** Access tokens given by account/register → the Matrix ID whose OpenID token the homeserver vouched for. */
  readonly accounts: Map<string, string>;
  /** `/pubkey/isvalid` (unauthenticated): its own key is valid unless revoked; `stalled` leaves the request unanswered. */
  readonly keyChecks: { revoked: Set<string>; stalled: boolean; asked: string[] };
  /**
   * The identity server's `/3pid/onbind` call to the bound user's server (HTTPS, unsigned), for every stored invite
   * of the address. PUT as the spec says; Sydent sends POST, the only method Synapse serves.
   */
  onbind(federationUrl: string, caPem: string, medium: string, address: string, mxid: string, method?: 'PUT' | 'POST'): Promise<{ status: number; body: unknown }>;
  /** Binds `address` to `mxid` (lookups answer it from now on) and calls onbind at `federationUrl`, the user's server. */
  bind(address: string, mxid: string, federationUrl: string, options?: OnbindOptions): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export const TEST_IDENTITY_SERVER_NAME = 'id.example';
export const TEST_IDENTITY_ACCESS_TOKEN = 'ist-token';

const V2 = '/_matrix/identity/v2';
const LOOKUP_PEPPER = 'pepper';

export interface StartTestIdentityServerOptions {
  tokenPrefix?: string;
  /** Serve HTTPS with a certificate from this CA; OpenID checks and onbind calls trust only this CA. */
  tls?: { ca: TestCertificateAuthority };
}

const sha256Lookup = (boundKey: string) => createHash('sha256').update(`${boundKey} ${LOOKUP_PEPPER}`, 'utf8').digest('base64url');

/** A JSON request over HTTPS to a test server certified by `caPem`. */
function httpsJson(url: URL, method: string, caPem: string | undefined, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ...(caPem ? { ca: caPem } : {}), headers: { 'content-type': 'application/json' } }, (res) => {
      let answer = '';
      res.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      res.on('end', () => {
        let parsed: unknown = answer;
        try {
          parsed = answer ? JSON.parse(answer) : undefined;
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.once('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export async function startTestIdentityServer(options: StartTestIdentityServerOptions = {}): Promise<TestIdentityServer> {
  const key = new SigningKey('0', new Uint8Array(32).fill(5));
  const bound = new Map<string, string>();
  const storedInvites: Array<Record<string, unknown>> = [];
  const inviteTokens: string[] = [];
  const ephemeralKeys = new Set<string>();
  const accounts = new Map<string, string>();
  const keyChecks = { revoked: new Set<string>(), stalled: false, asked: [] as string[] };
  const caPem = options.tls?.ca.certPem;
  let serverName = TEST_IDENTITY_SERVER_NAME;

  const authorised = (req: IncomingMessage, url: URL) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : url.searchParams.get('access_token');
    return token === TEST_IDENTITY_ACCESS_TOKEN || (token !== null && accounts.has(token));
  };

  /** account/register: the homeserver named in the OpenID token must vouch for it (`/openid/userinfo`). */
  async function register(body: Record<string, unknown> | undefined): Promise<[number, unknown]> {
    const server = body?.matrix_server_name;
    if (typeof body?.access_token !== 'string' || typeof server !== 'string') return [400, { errcode: 'M_MISSING_PARAMS', error: 'access_token and matrix_server_name are required' }];
    if (!caPem) return [500, { errcode: 'M_UNKNOWN', error: 'This test identity server checks OpenID tokens only when serving TLS' }];
    const userinfo = new URL(`https://${server}/_matrix/federation/v1/openid/userinfo`);
    userinfo.searchParams.set('access_token', body.access_token);
    const answer = await httpsJson(userinfo, 'GET', caPem).catch((error: Error) => ({ status: 0, body: error.message }));
    const sub = (answer.body as { sub?: unknown } | undefined)?.sub;
    if (answer.status !== 200 || typeof sub !== 'string' || !sub.endsWith(`:${server}`)) return [401, { errcode: 'M_UNAUTHORIZED', error: `${server} did not vouch for the OpenID token` }];
    const token = `ist-${randomBytes(12).toString('hex')}`;
    accounts.set(token, sub);
    return [200, { token, access_token: token }];
  }

  function storeInvite(body: Record<string, unknown> | undefined): [number, unknown] {
    if (!body || typeof body.medium !== 'string' || typeof body.address !== 'string' || typeof body.room_id !== 'string' || typeof body.sender !== 'string') {
      return [400, { errcode: 'M_MISSING_PARAMS', error: 'medium, address, room_id and sender are required' }];
    }
    const token = `${options.tokenPrefix ?? 'token'}-${storedInvites.length + 1}`;
    storedInvites.push(body);
    inviteTokens.push(token);
    const ephemeral = new SigningKey('0', randomBytes(32)).publicKeyBase64;
    ephemeralKeys.add(ephemeral);
    const keyUrl = (path: string) => `https://${serverName}${V2}/pubkey/${path}`;
    return [
      200,
      {
        token,
        display_name: `${body.address.slice(0, 1)}...`,
        public_keys: [
          { public_key: key.publicKeyBase64, key_validity_url: keyUrl('isvalid') },
          { public_key: ephemeral, key_validity_url: keyUrl('ephemeral/isvalid') },
        ],
      },
    ];
  }

  async function route(req: IncomingMessage, url: URL, body: Record<string, unknown> | undefined): Promise<[number, unknown] | undefined> {
    const path = url.pathname;
    if (path === `${V2}/pubkey/isvalid` || path === `${V2}/pubkey/ephemeral/isvalid`) {
      const publicKey = url.searchParams.get('public_key') ?? '';
      keyChecks.asked.push(publicKey);
      if (keyChecks.stalled) return undefined;
      const known = path.endsWith('/ephemeral/isvalid') ? ephemeralKeys.has(publicKey) : publicKey === key.publicKeyBase64;
      return [200, { valid: known && !keyChecks.revoked.has(publicKey) }];
    }
    if (path === `${V2}/pubkey/${encodeURIComponent(key.keyId)}` || path === `${V2}/pubkey/${key.keyId}`) return [200, { public_key: key.publicKeyBase64 }];
    if (path.startsWith(`${V2}/pubkey/`)) return [404, { errcode: 'M_NOT_FOUND', error: 'The public key was not found' }];
    if (path === V2 && req.method === 'GET') return [200, {}];
    if (path === `${V2}/account/register` && req.method === 'POST') return register(body);
    if (path === `${V2}/terms` && req.method === 'GET') return [200, { policies: {} }];
    if (!authorised(req, url)) return [401, { errcode: 'M_UNAUTHORIZED', error: 'Unknown token' }];
    if (path === `${V2}/terms` && req.method === 'POST') return [200, {}];
    if (path === `${V2}/account`) {
      const header = req.headers.authorization?.slice('Bearer '.length) ?? url.searchParams.get('access_token') ?? '';
      return [200, { user_id: accounts.get(header) ?? '' }];
    }
    if (path === `${V2}/hash_details`) return [200, { algorithms: ['none', 'sha256'], lookup_pepper: LOOKUP_PEPPER }];
    if (path === `${V2}/lookup`) {
      if (body?.pepper !== LOOKUP_PEPPER) return [400, { errcode: 'M_INVALID_PEPPER', error: 'Unknown or invalid pepper', algorithm: 'sha256', lookup_pepper: LOOKUP_PEPPER }];
      const byLookupKey = new Map([...bound].map(([boundKey, mxid]) => [body.algorithm === 'sha256' ? sha256Lookup(boundKey) : boundKey, mxid] as const));
      const addresses = Array.isArray(body.addresses) ? (body.addresses as unknown[]).filter((a): a is string => typeof a === 'string') : [];
      return [200, { mappings: Object.fromEntries(addresses.flatMap((a) => (byLookupKey.has(a) ? [[a, byLookupKey.get(a)!]] : []))) }];
    }
    if (path === `${V2}/store-invite` && req.method === 'POST') return storeInvite(body);
    return [404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }];
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const answer = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      let body: Record<string, unknown> | undefined;
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      } catch {
        return answer(400, { errcode: 'M_NOT_JSON', error: 'Body is not JSON' });
      }
      route(req, new URL(req.url ?? '/', 'http://id.invalid'), body).then(
        (result) => result && answer(...result),
        (error: Error) => answer(500, { errcode: 'M_UNKNOWN', error: error.message }),
      );
    });
  };
  let server: Server;
  if (options.tls) {
    const certificate = issueServerCertificate(options.tls.ca);
    server = createHttpsServer({ cert: certificate.certPem, key: certificate.keyPem }, handle);
  } else {
    server = createHttpServer(handle);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  if (options.tls) serverName = `localhost:${port}`;

  async function sendOnbind(federationUrl: string, address: string, mxid: string, onbindOptions: OnbindOptions = {}) {
    const { medium = 'email', method = 'POST', signingKey = key } = onbindOptions;
    const invites = storedInvites.flatMap((stored, i) =>
      stored.medium === medium && stored.address === address
        ? [{ address, medium, mxid, room_id: stored.room_id, sender: stored.sender, signed: signJson({ mxid, sender: String(stored.sender), token: inviteTokens[i]! }, serverName, signingKey) }]
        : [],
    );
    return httpsJson(new URL('/_matrix/federation/v1/3pid/onbind', federationUrl), method, onbindOptions.caPem ?? caPem, { address, medium, mxid, invites });
  }

  return {
    baseUrl: options.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    get serverName() {
      return serverName;
    },
    key,
    bound,
    storedInvites,
    inviteTokens,
    accounts,
    keyChecks,
    onbind: (federationUrl, ca, medium, address, mxid, method = 'PUT') => sendOnbind(federationUrl, address, mxid, { medium, method, caPem: ca }),
    bind(address, mxid, federationUrl, onbindOptions = {}) {
      bound.set(`${address} ${onbindOptions.medium ?? 'email'}`, mxid);
      return sendOnbind(federationUrl, address, mxid, onbindOptions);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
