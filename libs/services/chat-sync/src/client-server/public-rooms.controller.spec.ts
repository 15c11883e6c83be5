// Issue 14: client-server `GET/POST /publicRooms` for AS users: this server's directory, or with `server=` another
// server's over federation, relayed with only the spec's fields. A server that does not answer is a 502 after a
// bounded wait, audited with the reason; a forged `since` is a 400.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FederationClientError, FederationHttpError } from '@fedgate/federation-client';
import { MatrixError } from '@fedgate/service-kit';
import { openSqliteStore, type Store } from '@fedgate/store';
import { RemotePublicRooms } from '../directory/remote-public-rooms';
import { PublicRoomsController } from './public-rooms.controller';

const identity = { serverName: 'gw.test' };

describe('issue 14: client-server /publicRooms, local and through server=', () => {
  let dir: string;
  let store: Store;
  let controller: PublicRoomsController;
  let answer: (method: string, query: unknown) => Promise<{ status: number; body: unknown }>;
  const asked: Array<{ method: string; server: string; path: string; query?: unknown; body?: unknown; timeoutMs?: number }> = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-public-rooms-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    const federation = {
      getJson: async (server: string, p: string, options: { query?: unknown; timeoutMs?: number }) => {
        asked.push({ method: 'GET', server, path: p, query: options.query, timeoutMs: options.timeoutMs });
        return answer('GET', options.query);
      },
      postJson: async (server: string, p: string, body: unknown, options: { timeoutMs?: number }) => {
        asked.push({ method: 'POST', server, path: p, body, timeoutMs: options.timeoutMs });
        return answer('POST', body);
      },
    };
    const remote = new RemotePublicRooms(federation as never, store, identity as never, 50);
    controller = new PublicRoomsController(store, remote, identity as never);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    asked.length = 0;
  });

  const failure = (promise: Promise<unknown>) => promise.then(() => 200, (error: unknown) => [(error as MatrixError).status, (error as MatrixError).errcode]);
  const room = (roomId: string, extra: Record<string, unknown> = {}) => ({ room_id: roomId, num_joined_members: 3, world_readable: false, guest_can_join: false, ...extra });

  it('without server= (or with this server) lists the local directory; a forged since is a 400', async () => {
    expect(await controller.list({})).toEqual({ chunk: [], total_room_count_estimate: 0 });
    expect(await controller.list({ server: 'gw.test', limit: '5' })).toEqual({ chunk: [], total_room_count_estimate: 0 });
    expect(await failure(controller.list({ since: 'forged' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(controller.search(undefined, { since: `r${Buffer.from('not a room').toString('base64url')}` }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(asked).toEqual([]);
  });

  it('GET with server= asks the server over federation with limit and since, and keeps only the spec’s fields', async () => {
    answer = async () => ({
      status: 200,
      body: {
        chunk: [room('!a:remote.test', { name: 'A', secret: 'x', num_joined_members: -4 }), { room_id: 'not-a-room' }, room('!b:remote.test', { topic: 5 }), room('!c:remote.test')],
        next_batch: 'remote-token',
        total_room_count_estimate: 'many',
      },
    });
    const page = await controller.list({ server: 'remote.test', limit: '2', since: 'their-token' });
    expect(asked).toEqual([{ method: 'GET', server: 'remote.test', path: '/_matrix/federation/v1/publicRooms', query: { limit: 2, since: 'their-token' }, timeoutMs: 50 }]);
    expect(page).toEqual({
      chunk: [
        { room_id: '!a:remote.test', name: 'A', num_joined_members: 0, world_readable: false, guest_can_join: false, join_rule: 'public' },
        { room_id: '!b:remote.test', num_joined_members: 3, world_readable: false, guest_can_join: false, join_rule: 'public' },
      ],
      next_batch: 'remote-token',
    });
  });

  it('POST with server= relays the filter, include_all_networks and third_party_instance_id', async () => {
    answer = async () => ({ status: 200, body: { chunk: [room('!s:remote.test', { room_type: 'm.space' })], total_room_count_estimate: 1 } });
    const page = await controller.search('remote.test', { limit: 10, filter: { generic_search_term: 'space', room_types: ['m.space', null] }, include_all_networks: true });
    expect(asked[0]).toMatchObject({ method: 'POST', body: { limit: 10, include_all_networks: true, filter: { generic_search_term: 'space', room_types: ['m.space', null] } } });
    expect(page).toMatchObject({ chunk: [{ room_id: '!s:remote.test', room_type: 'm.space' }], total_room_count_estimate: 1 });
    await controller.search('remote.test', { third_party_instance_id: 'irc' });
    expect(asked[1]).toMatchObject({ method: 'POST', body: { third_party_instance_id: 'irc' } });
  });

  it('a server that does not answer is a 502 after the bounded wait, audited with the reason', async () => {
    answer = () => new Promise(() => undefined);
    expect(await failure(controller.list({ server: 'silent.test' }))).toEqual([502, 'M_UNKNOWN']);
    const [record] = await store.audit.query({ direction: 'out', destination: 'silent.test' });
    expect(record).toMatchObject({ outcome: 'error', path: '/_matrix/federation/v1/publicRooms', reason: expect.stringContaining('did not answer within 50 ms') });
    // The client retries once the server answers again: nothing of the failed call is left in the way.
    answer = async () => ({ status: 200, body: { chunk: [room('!back:silent.test')] } });
    expect((await controller.list({ server: 'silent.test' })).chunk.map((r) => r.room_id)).toEqual(['!back:silent.test']);
    expect((await store.audit.query({ direction: 'out', destination: 'silent.test' }))[0]).toMatchObject({ outcome: 'ok', status: 200 });
  });

  it('a server that cannot be reached, or answers something else, is a 502; its own 4xx refusal is passed on', async () => {
    answer = async () => {
      throw new FederationClientError('CONNECT_FAILED' as never, 'connection refused');
    };
    expect(await failure(controller.list({ server: 'down.test' }))).toEqual([502, 'M_UNKNOWN']);
    answer = async () => ({ status: 200, body: { rooms: [] } });
    expect(await failure(controller.list({ server: 'odd.test' }))).toEqual([502, 'M_UNKNOWN']);
    answer = async () => {
      throw new FederationHttpError(400, { errcode: 'M_INVALID_PARAM', error: 'bad since' }, 'remote.test');
    };
    expect(await failure(controller.list({ server: 'remote.test', since: 'forged' }))).toEqual([400, 'M_INVALID_PARAM']);
    answer = async () => {
      throw new FederationHttpError(500, { errcode: 'M_UNKNOWN' }, 'remote.test');
    };
    expect(await failure(controller.list({ server: 'remote.test' }))).toEqual([502, 'M_UNKNOWN']);
  });

  it('bad input: a server that is not a server name, a bad limit, a network together with all networks', async () => {
    expect(await failure(controller.list({ server: 'not a server!' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(controller.list({ limit: 'x' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(controller.list({ server: 'remote.test', limit: '-1' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(controller.search(undefined, { include_all_networks: true, third_party_instance_id: 'irc' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(controller.search(undefined, { filter: { room_types: 'm.space' } }))).toEqual([400, 'M_BAD_JSON']);
    expect(await controller.search(undefined, { third_party_instance_id: 'irc' })).toEqual({ chunk: [], total_room_count_estimate: 0 });
    expect(asked).toEqual([]);
  });
});
