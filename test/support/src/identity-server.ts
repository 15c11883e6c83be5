// An identity server for third-party invite tests: the identity service API calls a homeserver makes when it
// sends one (hash_details with the `none` algorithm, lookup, store-invite), and the onbind call it makes when the
// address gets bound, signing each pending invite with its key; and `/pubkey/isvalid`, which the inviter's server asks.
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { signJson, SigningKey } from '@fedgate/protocol';

export interface TestIdentityServer {
  /** For a homeserver's `thirdPartyInvites.identityServers[].baseUrl`. */
  readonly baseUrl: string;
  readonly key: SigningKey;
  /** `"<address> <medium>"` → Matrix ID: what lookup answers as bound. */
  readonly bound: Map<string, string>;
  /** Every store-invite body received, in order. */
  readonly storedInvites: Array<Record<string, unknown>>;
  /** `/pubkey/isvalid` (unauthenticated): its own key is valid unless revoked; `stalled` leaves the request unanswered. */
  readonly keyChecks: { revoked: Set<string>; stalled: boolean; asked: string[] };
  /**
   * The identity server's `/3pid/onbind` call to the bound user's server (HTTPS, unsigned), for every stored invite
   * of the address. PUT as the spec says; Sydent sends POST, the only method Synapse serves.
   */
  onbind(federationUrl: string, caPem: string, medium: string, address: string, mxid: string, method?: 'PUT' | 'POST'): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export const TEST_IDENTITY_SERVER_NAME = 'id.example';
export const TEST_IDENTITY_ACCESS_TOKEN = 'ist-token';

export async function startTestIdentityServer(options: { tokenPrefix?: string } = {}): Promise<TestIdentityServer> {
  const key = new SigningKey('0', new Uint8Array(32).fill(5));
  const bound = new Map<string, string>();
  const storedInvites: Array<Record<string, unknown>> = [];
  const tokens: string[] = [];
  const keyChecks = { revoked: new Set<string>(), stalled: false, asked: [] as string[] };
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const body = text ? JSON.parse(text) : undefined;
      const answer = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      const url = new URL(req.url ?? '/', 'http://id.invalid');
      if (url.pathname === '/_matrix/identity/v2/pubkey/isvalid') {
        const publicKey = url.searchParams.get('public_key') ?? '';
        keyChecks.asked.push(publicKey);
        if (keyChecks.stalled) return;
        return answer(200, { valid: publicKey === key.publicKeyBase64 && !keyChecks.revoked.has(publicKey) });
      }
      if (req.headers.authorization !== `Bearer ${TEST_IDENTITY_ACCESS_TOKEN}`) return answer(401, { errcode: 'M_UNAUTHORIZED', error: 'Unknown token' });
      if (req.url === '/_matrix/identity/v2/hash_details') return answer(200, { algorithms: ['none'], lookup_pepper: 'pepper' });
      if (req.url === '/_matrix/identity/v2/lookup') {
        const [address] = body.addresses as string[];
        const mxid = bound.get(address);
        return answer(200, { mappings: mxid ? { [address]: mxid } : {} });
      }
      if (req.url === '/_matrix/identity/v2/store-invite') {
        const token = `${options.tokenPrefix ?? 'token'}-${storedInvites.length + 1}`;
        storedInvites.push(body);
        tokens.push(token);
        const keyValidityUrl = `https://${TEST_IDENTITY_SERVER_NAME}/_matrix/identity/v2/pubkey/isvalid`;
        return answer(200, { token, display_name: `${String(body.address).slice(0, 1)}...`, public_keys: [{ public_key: key.publicKeyBase64, key_validity_url: keyValidityUrl }] });
      }
      answer(404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    key,
    bound,
    storedInvites,
    keyChecks,
    onbind(federationUrl, caPem, medium, address, mxid, method = 'PUT') {
      const invites = storedInvites.flatMap((stored, i) =>
        stored.medium === medium && stored.address === address
          ? [{ address, medium, mxid, room_id: stored.room_id, sender: stored.sender, signed: signJson({ mxid, sender: String(stored.sender), token: tokens[i] }, TEST_IDENTITY_SERVER_NAME, key) }]
          : [],
      );
      return new Promise((resolve, reject) => {
        const req = request(new URL('/_matrix/federation/v1/3pid/onbind', federationUrl), { method, ca: caPem, headers: { 'content-type': 'application/json' } }, (res) => {
          let answer = '';
          res.on('data', (chunk: Buffer) => (answer += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: answer ? JSON.parse(answer) : undefined }));
        });
        req.once('error', reject);
        req.end(JSON.stringify({ address, medium, mxid, invites }));
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
