// Issue 14, third-party invites from the client-server API: POST /rooms/{roomId}/invite with id_server, against a
// real in-process state-resolver and an identity server played by this test (bound, unbound, unreachable, slow,
// refusing, lying). Nothing goes into the room unless the identity server's answers were whole, and nothing is
// asked of an identity server the operator does not trust or for an inviter who may not invite.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CreateEventCommand } from '@fedgate/bus';
import type { FedgateConfig } from '@fedgate/config';
import { SigningKey } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { TestNetwork, type TestServer } from '@fedgate/state-resolver';
import type { Requester } from '../client-server/requester';
import { RoomActions } from '../rooms/room-actions';
import type { RoomCommands } from '../rooms/room-commands';
import { RoomView } from '../rooms/room-view';
import { hashedLookupAddress, MAX_IDENTITY_ANSWER_BYTES } from './identity-server-client';
import { isThirdPartyInviteBody, ThirdPartyInviteSender } from './third-party-invite-sender';

const ALICE = '@alice:fg.test';
const BOB = '@bob:fg.test';
const PEPPER = 'matrixrocks';
const identityKey = new SigningKey('0', new Uint8Array(32).fill(7));
const requester = (userId: string): Requester => ({ service: { id: 'test-chat' } as never, userId });

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  body: any;
}
type Handler = (seen: Seen, res: ServerResponse) => void;

/** The identity server: answers per path from `handlers`, records every request. */
class TestIdentityServer {
  readonly seen: Seen[] = [];
  handlers: Record<string, Handler> = {};
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const seen = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
        this.seen.push(seen);
        const handler = this.handlers[seen.path];
        if (handler) handler(seen, res);
        else json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'no' });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  paths(): string[] {
    return this.seen.map((s) => s.path);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const hashDetails: Handler = (_seen, res) => json(res, 200, { algorithms: ['none', 'sha256'], lookup_pepper: PEPPER });
const noMappings: Handler = (_seen, res) => json(res, 200, { mappings: {} });
const storedInvite = (answer: Record<string, unknown> = {}): Handler => (_seen, res) =>
  json(res, 200, { token: 'tok-abc', display_name: 'b...@example.org', public_keys: [{ public_key: identityKey.publicKeyBase64, key_validity_url: 'https://id.example/_matrix/identity/v2/pubkey/isvalid' }], ...answer });

describe('third-party invites sent from the client-server API', () => {
  let network: TestNetwork;
  let fg: TestServer;
  let view: RoomView;
  let ids: TestIdentityServer;
  let config: FedgateConfig;
  let sender: ThirdPartyInviteSender;
  let roomId: string;
  /** The next create-event command fails as a state-resolver timeout or crash would. */
  let failNextEvent = false;

  beforeAll(async () => {
    ids = new TestIdentityServer();
    await ids.start();
  });
  afterAll(() => ids.stop());

  beforeEach(async () => {
    network = new TestNetwork();
    fg = await network.add('fg.test');
    view = new RoomView(fg.store);
    failNextEvent = false;
    const commands = {
      createEvent: async (command: CreateEventCommand) => {
        if (failNextEvent) {
          failNextEvent = false;
          throw new MatrixError(504, 'M_UNKNOWN', 'The room service did not answer: timeout');
        }
        const reply = await fg.resolver.localEvents.onCommand(command);
        if (!reply.ok) throw new MatrixError(reply.status ?? 403, reply.errcode, reply.error);
        return { eventId: reply.eventId, roomId: reply.roomId ?? command.roomId };
      },
    } as unknown as RoomCommands;
    config = { thirdPartyInvites: { identityServers: [{ serverName: 'id.example', baseUrl: ids.url }], requestTimeoutMs: 2_000 } } as FedgateConfig;
    const identity = { serverName: 'fg.test' } as never;
    const actions = new RoomActions(fg.store, identity, commands, view, {} as never, config);
    sender = new ThirdPartyInviteSender(fg.store, identity, config, actions, commands, view);
    roomId = await fg.createRoom(ALICE, '11', [
      { type: 'm.room.name', stateKey: '', content: { name: 'Invited by email' } },
      { type: 'm.room.canonical_alias', stateKey: '', content: { alias: '#email:fg.test' } },
    ]);
    await fg.store.memberships.set(ALICE, roomId, 'join', '$x');
    ids.seen.length = 0;
    ids.handlers = { '/_matrix/identity/v2/hash_details': hashDetails, '/_matrix/identity/v2/lookup': noMappings, '/_matrix/identity/v2/store-invite': storedInvite() };
  });
  afterEach(() => network.close());

  const body = (extra: Record<string, unknown> = {}) => ({ id_server: 'id.example', id_access_token: 'ist-token', medium: 'email', address: 'bob@example.org', ...extra });
  const thirdPartyInvites = async () => {
    const state = await view.currentState(roomId);
    return [...(state?.events.values() ?? [])].filter((e) => e.type === 'm.room.third_party_invite');
  };
  const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => (error instanceof MatrixError ? { status: error.status, errcode: error.errcode, error: error.error } : error));
  const auditRecords = async () => fg.store.audit.query({ limit: 50 });

  it('tells the third-party form of the invite body from the user form', () => {
    expect(isThirdPartyInviteBody(body())).toBe(true);
    expect(isThirdPartyInviteBody({ user_id: BOB })).toBe(false);
    expect(isThirdPartyInviteBody({ user_id: BOB, id_server: 'id.example' })).toBe(false);
  });

  it('an unbound address: looks it up hashed with the pepper, stores the invite with the room’s details, and sends the m.room.third_party_invite', async () => {
    expect(await sender.invite(requester(ALICE), roomId, body())).toEqual({});

    expect(ids.paths()).toEqual(['/_matrix/identity/v2/hash_details', '/_matrix/identity/v2/lookup', '/_matrix/identity/v2/store-invite']);
    expect(ids.seen.every((s) => s.authorization === 'Bearer ist-token')).toBe(true);
    expect(ids.seen[1].body).toEqual({ addresses: [hashedLookupAddress('bob@example.org', 'email', PEPPER)], algorithm: 'sha256', pepper: PEPPER });
    expect(ids.seen[2].body).toEqual({ medium: 'email', address: 'bob@example.org', room_id: roomId, sender: ALICE, room_name: 'Invited by email', room_alias: '#email:fg.test', room_join_rules: 'public' });

    const [invite] = await thirdPartyInvites();
    expect(invite).toMatchObject({ stateKey: 'tok-abc', pdu: { sender: ALICE } });
    expect(invite.pdu.content).toEqual({
      display_name: 'b...@example.org',
      key_validity_url: 'https://id.example/_matrix/identity/v2/pubkey/isvalid',
      public_key: identityKey.publicKeyBase64,
      public_keys: [{ public_key: identityKey.publicKeyBase64, key_validity_url: 'https://id.example/_matrix/identity/v2/pubkey/isvalid' }],
    });
    const [record] = await auditRecords();
    expect(record).toMatchObject({ origin: 'appservice:test-chat', status: 200, outcome: 'ok', reason: 'third_party_invite_sent', details: { result: 'third_party_invite', id_server: 'id.example', medium: 'email' } });
    // The address is kept out of the audit.
    expect(JSON.stringify(record)).not.toContain('bob@example.org');
  });

  it('a bound address: an ordinary invite of the bound user, nothing stored at the identity server', async () => {
    ids.handlers['/_matrix/identity/v2/lookup'] = (seen, res) => json(res, 200, { mappings: { [seen.body.addresses[0]]: BOB } });
    expect(await sender.invite(requester(ALICE), roomId, body())).toEqual({});
    expect(await view.membership(roomId, BOB)).toBe('invite');
    expect(ids.paths()).not.toContain('/_matrix/identity/v2/store-invite');
    expect(await thirdPartyInvites()).toEqual([]);
  });

  it('an identity server offering only the none algorithm is asked with the plain address', async () => {
    ids.handlers['/_matrix/identity/v2/hash_details'] = (_seen, res) => json(res, 200, { algorithms: ['none'], lookup_pepper: PEPPER });
    ids.handlers['/_matrix/identity/v2/lookup'] = (seen, res) => json(res, 200, { mappings: { [seen.body.addresses[0]]: BOB } });
    await sender.invite(requester(ALICE), roomId, body());
    expect(ids.seen[1].body).toEqual({ addresses: ['bob@example.org email'], algorithm: 'none', pepper: PEPPER });
    expect(await view.membership(roomId, BOB)).toBe('invite');
  });

  it('an id_server the operator does not trust is refused with M_SERVER_NOT_TRUSTED and never contacted; with no list every one is', async () => {
    expect(await refusal(sender.invite(requester(ALICE), roomId, body({ id_server: 'evil.example' })))).toMatchObject({ status: 403, errcode: 'M_SERVER_NOT_TRUSTED' });
    config.thirdPartyInvites.identityServers = [];
    expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 403, errcode: 'M_SERVER_NOT_TRUSTED' });
    expect(ids.seen).toEqual([]);
    expect(await auditRecords()).toEqual([expect.objectContaining({ outcome: 'rejected', reason: 'third_party_invite_refused' }), expect.objectContaining({ outcome: 'rejected', reason: 'third_party_invite_refused' })]);
  });

  it('an inviter not in the room, or without the invite power level, is refused before the identity server is asked', async () => {
    expect(await refusal(sender.invite(requester(BOB), roomId, body()))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    const levels = (await view.stateEvent(roomId, 'm.room.power_levels', ''))!.pdu.content;
    expect((await fg.send(roomId, ALICE, 'm.room.power_levels', { ...levels, invite: 50 }, { stateKey: '' })).ok).toBe(true);
    expect((await fg.send(roomId, BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB })).ok).toBe(true);
    expect(await refusal(sender.invite(requester(BOB), roomId, body()))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN', error: expect.stringContaining('may not invite') });
    expect(ids.seen).toEqual([]);
  });

  it('a body without id_access_token or address is a clear 400', async () => {
    expect(await refusal(sender.invite(requester(ALICE), roomId, { id_server: 'id.example', medium: 'email', address: 'b@example.org' }))).toMatchObject({ status: 400, errcode: 'M_MISSING_PARAM' });
    expect(await refusal(sender.invite(requester(ALICE), roomId, body({ address: 7 })))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
  });

  it('an unreachable identity server: 502, nothing sent to the room, the reason in the audit', async () => {
    config.thirdPartyInvites.identityServers = [{ serverName: 'id.example', baseUrl: 'http://127.0.0.1:1' }];
    expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 502, errcode: 'M_UNKNOWN', error: expect.stringContaining('unreachable') });
    expect(await thirdPartyInvites()).toEqual([]);
    expect(await auditRecords()).toEqual([expect.objectContaining({ status: 502, outcome: 'error', reason: 'third_party_invite_refused' })]);
  });

  it('an identity server that does not answer store-invite in time: 502 after the bound, nothing sent; the caller retrying then succeeds', async () => {
    config.thirdPartyInvites.requestTimeoutMs = 200;
    const hanging: ServerResponse[] = [];
    ids.handlers['/_matrix/identity/v2/store-invite'] = (_seen, res) => void hanging.push(res);
    expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 502, error: expect.stringContaining('no answer within 200 ms') });
    expect(await thirdPartyInvites()).toEqual([]);
    for (const res of hanging) res.destroy();

    ids.handlers['/_matrix/identity/v2/store-invite'] = storedInvite();
    expect(await sender.invite(requester(ALICE), roomId, body())).toEqual({});
    expect(await thirdPartyInvites()).toHaveLength(1);
  });

  it('an identity server refusing the access token: 403 M_THREEPID_AUTH_FAILED with its errcode; refusing otherwise: 502', async () => {
    ids.handlers['/_matrix/identity/v2/hash_details'] = (_seen, res) => json(res, 401, { errcode: 'M_UNAUTHORIZED', error: 'bad token' });
    expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 403, errcode: 'M_THREEPID_AUTH_FAILED' });
    ids.handlers['/_matrix/identity/v2/hash_details'] = hashDetails;
    ids.handlers['/_matrix/identity/v2/store-invite'] = (_seen, res) => json(res, 400, { errcode: 'M_THREEPID_IN_USE', error: 'bound meanwhile' });
    const error = await sender.invite(requester(ALICE), roomId, body()).catch((e: MatrixError) => e);
    expect(error).toMatchObject({ status: 502, errcode: 'M_UNKNOWN' });
    expect((error as MatrixError).toBody()).toMatchObject({ identity_server_status: 400, identity_server_errcode: 'M_THREEPID_IN_USE' });
    expect(await thirdPartyInvites()).toEqual([]);
  });

  it('the room service failing after store-invite: the caller gets the error and the audit says so; retrying sends one invite', async () => {
    failNextEvent = true;
    expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 504 });
    expect(await thirdPartyInvites()).toEqual([]);
    expect(await auditRecords()).toEqual([expect.objectContaining({ status: 504, outcome: 'error', reason: 'third_party_invite_refused' })]);
    // The identity server keeps the first stored invite; it has no event in the room, so an exchange for it fails.
    expect(await sender.invite(requester(ALICE), roomId, body())).toEqual({});
    expect(await thirdPartyInvites()).toHaveLength(1);
    expect(ids.paths().filter((p) => p.endsWith('/store-invite'))).toHaveLength(2);
  });

  it('a lying identity server giving a token already pending in the room does not replace that invite’s keys', async () => {
    await sender.invite(requester(ALICE), roomId, body());
    const other = new SigningKey('0', new Uint8Array(32).fill(8));
    ids.handlers['/_matrix/identity/v2/store-invite'] = storedInvite({ public_keys: [{ public_key: other.publicKeyBase64, key_validity_url: 'https://id.example/v' }] });
    expect(await refusal(sender.invite(requester(ALICE), roomId, body({ address: 'carol@example.org' })))).toMatchObject({ status: 502, error: expect.stringContaining('already used') });
    const [pending] = await thirdPartyInvites();
    expect(pending.pdu.content).toMatchObject({ public_key: identityKey.publicKeyBase64 });
  });

  it('createRoom’s invite_3pid: checked before the room is made (shape, trusted identity server); a refusal afterwards names the created room', async () => {
    expect(sender.parseCreateRoomInvites({ name: 'x' })).toEqual([]);
    expect(sender.parseCreateRoomInvites({ invite_3pid: [body()] })).toEqual([body()]);
    expect(() => sender.parseCreateRoomInvites({ invite_3pid: [body({ id_server: 'evil.example' })] })).toThrow(expect.objectContaining({ status: 403, errcode: 'M_SERVER_NOT_TRUSTED' }));
    expect(() => sender.parseCreateRoomInvites({ invite_3pid: body() })).toThrow(expect.objectContaining({ status: 400, errcode: 'M_BAD_JSON' }));
    expect(() => sender.parseCreateRoomInvites({ invite_3pid: [body({ medium: undefined })] })).toThrow(expect.objectContaining({ status: 400, errcode: 'M_MISSING_PARAM' }));
    expect(ids.seen).toEqual([]);

    await sender.inviteToNewRoom(requester(ALICE), roomId, [body()]);
    expect(await thirdPartyInvites()).toHaveLength(1);
    ids.handlers['/_matrix/identity/v2/store-invite'] = (_seen, res) => json(res, 500, { errcode: 'M_UNKNOWN', error: 'down' });
    const error = await sender.inviteToNewRoom(requester(ALICE), roomId, [body({ address: 'carol@example.org' })]).catch((e: MatrixError) => e);
    expect((error as MatrixError).toBody()).toMatchObject({ errcode: 'M_UNKNOWN', room_id: roomId, error: expect.stringContaining(`room ${roomId} was created`) });
  });

  describe('a lying identity server: 502 and nothing sent', () => {
    const lies: Array<[string, string, Handler]> = [
      ['lookup maps the address to something that is not a user ID', '/_matrix/identity/v2/lookup', (seen, res) => json(res, 200, { mappings: { [seen.body.addresses[0]]: 'not-a-user' } })],
      ['lookup answers without mappings', '/_matrix/identity/v2/lookup', (_seen, res) => json(res, 200, { nope: true })],
      ['hash_details offers no algorithm we know', '/_matrix/identity/v2/hash_details', (_seen, res) => json(res, 200, { algorithms: ['md5'], lookup_pepper: PEPPER })],
      ['hash_details offers sha256 without a pepper', '/_matrix/identity/v2/hash_details', (_seen, res) => json(res, 200, { algorithms: ['sha256'] })],
      ['store-invite gives no token', '/_matrix/identity/v2/store-invite', storedInvite({ token: '' })],
      ['store-invite gives an overlong token', '/_matrix/identity/v2/store-invite', storedInvite({ token: 'x'.repeat(300) })],
      ['store-invite gives a public key that is not Ed25519', '/_matrix/identity/v2/store-invite', storedInvite({ public_keys: [{ public_key: 'c2hvcnQ', key_validity_url: 'https://id.example/v' }] })],
      ['store-invite gives a key_validity_url that is no URL', '/_matrix/identity/v2/store-invite', storedInvite({ public_keys: [{ public_key: identityKey.publicKeyBase64, key_validity_url: 'javascript:alert(1)' }] })],
      ['store-invite gives no public keys', '/_matrix/identity/v2/store-invite', storedInvite({ public_keys: [] })],
      ['store-invite answers with something that is not JSON', '/_matrix/identity/v2/store-invite', (_seen, res) => res.end('<html>')],
      ['store-invite answers more than the size bound', '/_matrix/identity/v2/store-invite', (_seen, res) => json(res, 200, { token: 't', padding: 'x'.repeat(MAX_IDENTITY_ANSWER_BYTES) })],
    ];
    it.each(lies)('%s', async (_name, path, handler) => {
      ids.handlers[path] = handler;
      expect(await refusal(sender.invite(requester(ALICE), roomId, body()))).toMatchObject({ status: 502, errcode: 'M_UNKNOWN', error: expect.stringContaining('id.example') });
      expect(await thirdPartyInvites()).toEqual([]);
      expect(await view.membership(roomId, BOB)).toBeUndefined();
    });

    it('lookup mappings for addresses it was not asked about are ignored (the address stays unbound)', async () => {
      ids.handlers['/_matrix/identity/v2/lookup'] = (_seen, res) => json(res, 200, { mappings: { 'some-other-hash': BOB } });
      expect(await sender.invite(requester(ALICE), roomId, body())).toEqual({});
      expect(await view.membership(roomId, BOB)).toBeUndefined();
      expect(await thirdPartyInvites()).toHaveLength(1);
    });
  });
});
