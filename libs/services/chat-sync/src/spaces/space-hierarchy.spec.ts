// Issue 14, spaces: the client-server /hierarchy walk over local and remote spaces: depth first, only rooms
// the user may see, suggested_only / max_depth / limit / from, bounded, and a lying remote server kept out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FederationHttpError } from '@fedgate/federation-client';
import { generateSigningKey } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { openSqliteStore, stateTupleKey, type Store } from '@fedgate/store';
import { parseHierarchyQuery } from './hierarchy.controller';
import { RemoteHierarchies } from './remote-hierarchy';
import { HIERARCHY_LIMITS, SpaceHierarchy, type HierarchyQuery } from './space-hierarchy';

const HERE = 'gw.test';
const CREATOR = `@creator:${HERE}`;
const USER = `@bridge_u:${HERE}`;
const identity = { serverName: HERE, signingKey: generateSigningKey('t'), allKeys: [] as never[] };
identity.allKeys = [identity.signingKey] as never[];

interface RoomSpec {
  joinRule?: string;
  space?: boolean;
  visibility?: string;
  allow?: string[];
  children?: Array<{ id: string; via?: string[]; suggested?: boolean; order?: string }>;
  members?: Record<string, string>;
}

let counter = 0;
async function seed(store: Store, roomId: string, spec: RoomSpec = {}): Promise<void> {
  await store.rooms.ensure({ roomId, roomVersion: '10', creator: CREATOR, createdTs: 1 });
  const state = new Map<string, string>();
  const put = async (type: string, stateKey: string, content: Record<string, unknown>, sender = CREATOR) => {
    const eventId = `$e${++counter}`;
    const pdu = { room_id: roomId, type, state_key: stateKey, sender, content, depth: counter, prev_events: [], auth_events: [], origin_server_ts: counter, hashes: { sha256: 'x' }, signatures: {} };
    await store.events.append({ eventId, roomId, type, stateKey, depth: counter, prevEventIds: [], authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: counter });
    state.set(stateTupleKey(type, stateKey), eventId);
  };
  await put('m.room.create', '', { room_version: '10', ...(spec.space ? { type: 'm.space' } : {}) });
  await put('m.room.member', CREATOR, { membership: 'join' });
  await put('m.room.join_rules', '', { join_rule: spec.joinRule ?? 'public', ...(spec.allow ? { allow: spec.allow.map((id) => ({ type: 'm.room_membership', room_id: id })) } : {}) });
  await put('m.room.history_visibility', '', { history_visibility: spec.visibility ?? 'shared' });
  await put('m.room.name', '', { name: `name of ${roomId}` });
  for (const [userId, membership] of Object.entries(spec.members ?? {})) await put('m.room.member', userId, { membership });
  for (const child of spec.children ?? []) {
    await put('m.space.child', child.id, { via: child.via ?? [HERE], ...(child.suggested ? { suggested: true } : {}), ...(child.order ? { order: child.order } : {}) });
  }
  await store.rooms.setCurrentState(roomId, await store.state.save(roomId, state));
  await store.rooms.setJoinedServers(roomId, [HERE]);
  for (const [userId, membership] of Object.entries(spec.members ?? {})) if (userId.endsWith(`:${HERE}`)) await store.memberships.set(userId, roomId, membership, `$m${counter}`);
}

/** A remote space's federation answer, as an honest server gives it. */
function remoteAnswer(roomId: string, children: Array<{ id: string; summary?: Record<string, unknown> }>, extra: Record<string, unknown> = {}) {
  return {
    room: {
      room_id: roomId,
      num_joined_members: 3,
      world_readable: false,
      guest_can_join: false,
      join_rule: 'public',
      room_type: 'm.space',
      name: `remote ${roomId}`,
      children_state: children.map((c, i) => ({ type: 'm.space.child', state_key: c.id, content: { via: ['remote.test'] }, sender: '@r:remote.test', origin_server_ts: i })),
    },
    children: children.flatMap((c) => (c.summary ? [{ room_id: c.id, num_joined_members: 1, world_readable: false, guest_can_join: false, join_rule: 'public', children_state: [], ...c.summary }] : [])),
    inaccessible_children: [],
    ...extra,
  };
}

describe('client-server /hierarchy', () => {
  let dir: string;
  let store: Store;
  let answers: Map<string, unknown>;
  let asked: Array<{ server: string; roomId: string }>;
  let hierarchy: SpaceHierarchy;
  /** The next request hangs until its timeout and fails as a timeout does. */
  let slowOnce = false;
  const query = (q: Partial<HierarchyQuery> = {}): HierarchyQuery => ({ suggestedOnly: false, maxDepth: 10, limit: 50, via: [], ...q });
  const ids = (rooms: Array<{ room_id: string }>) => rooms.map((r) => r.room_id);
  const refusal = async (promise: Promise<unknown>) => {
    try {
      await promise;
    } catch (error) {
      if (error instanceof MatrixError) return { status: error.status, errcode: error.errcode };
      throw error;
    }
    throw new Error('expected a refusal');
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-hierarchy-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    answers = new Map();
    asked = [];
    const federation = {
      getJson: async (server: string, requestPath: string, options: { timeoutMs: number }) => {
        const roomId = decodeURIComponent(requestPath.split('/').pop()!);
        asked.push({ server, roomId });
        if (slowOnce) {
          slowOnce = false;
          await new Promise((resolve) => setTimeout(resolve, options.timeoutMs));
          throw new Error(`timed out after ${options.timeoutMs} ms`);
        }
        const answer = answers.get(`${server} ${roomId}`);
        if (answer === undefined) throw new FederationHttpError(404, { errcode: 'M_NOT_FOUND', error: 'no' }, server);
        return { status: 200, body: answer, headers: {} };
      },
    };
    hierarchy = new SpaceHierarchy(store, identity as never, new RemoteHierarchies(federation as never, store, identity as never));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('walks a local space depth first, serving only the rooms the user may see', async () => {
    await seed(store, '!parent:gw.test', { members: { [USER]: 'join' } });
    await seed(store, '!space:gw.test', {
      space: true,
      children: [
        { id: '!sub:gw.test', order: 'a' },
        { id: '!open:gw.test', order: 'b' },
        { id: '!closed:gw.test', order: 'c' },
        { id: '!invited:gw.test', order: 'd' },
        { id: '!restricted:gw.test', order: 'e' },
        { id: '!banned:gw.test', order: 'f' },
      ],
    });
    await seed(store, '!sub:gw.test', { space: true, children: [{ id: '!grandchild:gw.test' }] });
    await seed(store, '!grandchild:gw.test');
    await seed(store, '!open:gw.test');
    await seed(store, '!closed:gw.test', { joinRule: 'invite' });
    await seed(store, '!invited:gw.test', { joinRule: 'invite', members: { [USER]: 'invite' } });
    await seed(store, '!restricted:gw.test', { joinRule: 'restricted', allow: ['!parent:gw.test'] });
    await seed(store, '!banned:gw.test', { members: { [USER]: 'ban' } });

    const page = await hierarchy.page(USER, '!space:gw.test', query());
    expect(ids(page.rooms)).toEqual(['!space:gw.test', '!sub:gw.test', '!grandchild:gw.test', '!open:gw.test', '!invited:gw.test', '!restricted:gw.test']);
    expect(page.next_batch).toBeUndefined();
    expect(page.rooms[0]).toMatchObject({ name: 'name of !space:gw.test', room_type: 'm.space', join_rule: 'public' });
    expect(page.rooms[0].children_state).toHaveLength(6);
    expect(page.rooms[3].children_state).toEqual([]);
    // Someone not in the allowed room does not see the restricted child.
    expect(ids((await hierarchy.page('@bridge_other:gw.test', '!space:gw.test', query())).rooms)).not.toContain('!restricted:gw.test');
  });

  it('honours max_depth and suggested_only', async () => {
    await seed(store, '!space:gw.test', { space: true, children: [{ id: '!sub:gw.test', suggested: true }, { id: '!other:gw.test' }] });
    await seed(store, '!sub:gw.test', { space: true, children: [{ id: '!deep:gw.test', suggested: true }] });
    await seed(store, '!other:gw.test');
    await seed(store, '!deep:gw.test');
    expect(ids((await hierarchy.page(USER, '!space:gw.test', query({ maxDepth: 0 }))).rooms)).toEqual(['!space:gw.test']);
    expect(ids((await hierarchy.page(USER, '!space:gw.test', query({ maxDepth: 1 }))).rooms)).toEqual(['!space:gw.test', '!sub:gw.test', '!other:gw.test']);
    const suggested = await hierarchy.page(USER, '!space:gw.test', query({ suggestedOnly: true }));
    expect(ids(suggested.rooms)).toEqual(['!space:gw.test', '!sub:gw.test', '!deep:gw.test']);
    expect(suggested.rooms[0].children_state.map((c) => c.state_key)).toEqual(['!sub:gw.test']);
  });

  it('pages with limit and from, and refuses a token that was changed, made up, or is used with other filters or by another user', async () => {
    const children = ['!c1:gw.test', '!c2:gw.test', '!c3:gw.test', '!c4:gw.test'];
    await seed(store, '!space:gw.test', { space: true, children: children.map((id, i) => ({ id, order: String(i) })) });
    for (const id of children) await seed(store, id);
    const first = await hierarchy.page(USER, '!space:gw.test', query({ limit: 2 }));
    expect(ids(first.rooms)).toEqual(['!space:gw.test', '!c1:gw.test']);
    const second = await hierarchy.page(USER, '!space:gw.test', query({ limit: 2, from: first.next_batch }));
    expect(ids(second.rooms)).toEqual(['!c2:gw.test', '!c3:gw.test']);
    const third = await hierarchy.page(USER, '!space:gw.test', query({ limit: 2, from: second.next_batch }));
    expect(ids(third.rooms)).toEqual(['!c4:gw.test']);
    expect(third.next_batch).toBeUndefined();

    expect(await refusal(hierarchy.page(USER, '!space:gw.test', query({ limit: 2, maxDepth: 3, from: first.next_batch })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(hierarchy.page(USER, '!space:gw.test', query({ limit: 2, suggestedOnly: true, from: first.next_batch })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(hierarchy.page('@bridge_other:gw.test', '!space:gw.test', query({ limit: 2, from: first.next_batch })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(hierarchy.page(USER, '!space:gw.test', query({ from: 'not-a-token' })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    // A token with the walk edited (say, to visit a room of the attacker's choosing) no longer verifies.
    const signed = JSON.parse(Buffer.from(first.next_batch!, 'base64url').toString('utf8'));
    signed.walk.stack.push({ roomId: '!closed:elsewhere.test', via: ['evil.test'], depth: 1 });
    const forged = Buffer.from(JSON.stringify(signed)).toString('base64url');
    expect(await refusal(hierarchy.page(USER, '!space:gw.test', query({ limit: 2, from: forged })))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('refuses a root the user may not see (403), and checks it again on every page', async () => {
    await seed(store, '!private:gw.test', { space: true, joinRule: 'invite', members: { [USER]: 'join' }, children: [{ id: '!a:gw.test' }, { id: '!b:gw.test' }] });
    await seed(store, '!a:gw.test');
    await seed(store, '!b:gw.test');
    expect(await refusal(hierarchy.page('@bridge_other:gw.test', '!private:gw.test', query()))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
    const first = await hierarchy.page(USER, '!private:gw.test', query({ limit: 1 }));
    await seed(store, '!private:gw.test', { space: true, joinRule: 'invite', members: { [USER]: 'leave' }, children: [{ id: '!a:gw.test' }, { id: '!b:gw.test' }] });
    expect(await refusal(hierarchy.page(USER, '!private:gw.test', query({ limit: 1, from: first.next_batch })))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('stops at a loop', async () => {
    await seed(store, '!loop-a:gw.test', { space: true, children: [{ id: '!loop-b:gw.test' }] });
    await seed(store, '!loop-b:gw.test', { space: true, children: [{ id: '!loop-a:gw.test' }] });
    expect(ids((await hierarchy.page(USER, '!loop-a:gw.test', query())).rooms)).toEqual(['!loop-a:gw.test', '!loop-b:gw.test']);
  });

  it('asks the via servers about a remote child space over federation, uses the child summaries it gave, and caches the answer', async () => {
    await seed(store, '!space:gw.test', { space: true, children: [{ id: '!remote-space:remote.test', via: ['down.test', 'remote.test'] }] });
    answers.set('remote.test !remote-space:remote.test', remoteAnswer('!remote-space:remote.test', [{ id: '!remote-room:remote.test', summary: { name: 'Remote room' } }, { id: '!remote-closed:remote.test' }], { inaccessible_children: ['!remote-closed:remote.test'] }));
    const page = await hierarchy.page(USER, '!space:gw.test', query());
    expect(ids(page.rooms)).toEqual(['!space:gw.test', '!remote-space:remote.test', '!remote-room:remote.test']);
    expect(page.rooms[2]).toMatchObject({ name: 'Remote room', join_rule: 'public' });
    // down.test failed first; then remote.test answered; the child summary and the inaccessible child were not asked about.
    expect(asked).toEqual([
      { server: 'down.test', roomId: '!remote-space:remote.test' },
      { server: 'remote.test', roomId: '!remote-space:remote.test' },
    ]);
    const audited = await store.audit.query({ direction: 'out' });
    expect(audited.map((r) => [r.destination, r.outcome])).toEqual(expect.arrayContaining([['down.test', 'rejected'], ['remote.test', 'ok']]));
    await hierarchy.page(USER, '!space:gw.test', query());
    expect(asked).toHaveLength(2);
  });

  it('serves a remote space as the root, through the room ID server and via', async () => {
    answers.set('remote.test !remote-root:remote.test', remoteAnswer('!remote-root:remote.test', [{ id: '!r1:remote.test', summary: {} }]));
    expect(ids((await hierarchy.page(USER, '!remote-root:remote.test', query())).rooms)).toEqual(['!remote-root:remote.test', '!r1:remote.test']);
    expect(await refusal(hierarchy.page(USER, '!unknown:nowhere.test', query()))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('keeps out what a lying server says: a summary of another room, children the space does not link, and rooms the user may not join', async () => {
    await seed(store, '!space:gw.test', { space: true, children: [{ id: '!liar-a:liar.test', via: ['liar.test'] }, { id: '!liar-b:liar.test', via: ['liar.test'] }] });
    await seed(store, '!local-secret:gw.test', { joinRule: 'invite' });
    // Asked about liar-a, it answers about a local invite-only room; asked about liar-b, it plants summaries of rooms it does not link.
    answers.set('liar.test !liar-a:liar.test', remoteAnswer('!local-secret:gw.test', []));
    const planted = remoteAnswer('!liar-b:liar.test', [{ id: '!linked:liar.test', summary: { join_rule: 'invite' } }]);
    planted.children.push({ room_id: '!local-secret:gw.test', num_joined_members: 1, world_readable: true, guest_can_join: false, join_rule: 'public', children_state: [] });
    answers.set('liar.test !liar-b:liar.test', planted);
    const page = await hierarchy.page(USER, '!space:gw.test', query());
    expect(ids(page.rooms)).toEqual(['!space:gw.test', '!liar-b:liar.test']);
    const audited = await store.audit.query({ direction: 'out', destination: 'liar.test' });
    expect(audited.find((r) => r.path.includes(encodeURIComponent('!liar-a:liar.test')))).toMatchObject({ outcome: 'error', reason: expect.stringContaining('is not !liar-a:liar.test') });
    // And a later walk that reaches the local room uses what this server knows, not the planted summary.
    expect(await refusal(hierarchy.page(USER, '!local-secret:gw.test', query()))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('what one server says about a room is not used for a link to that room through another server (no cache poisoning)', async () => {
    await seed(store, '!bait:gw.test', { space: true, children: [{ id: '!evil-space:evil.test', via: ['evil.test'] }] });
    await seed(store, '!honest:gw.test', { space: true, children: [{ id: '!victim:good.test', via: ['good.test'] }] });
    answers.set('evil.test !evil-space:evil.test', remoteAnswer('!evil-space:evil.test', [{ id: '!victim:good.test', summary: { name: 'FAKE', topic: 'go to evil.example' } }]));
    answers.set('good.test !victim:good.test', { room: { room_id: '!victim:good.test', num_joined_members: 5, world_readable: false, guest_can_join: false, join_rule: 'public', name: 'Real', children_state: [] }, children: [], inaccessible_children: [] });
    await hierarchy.page(USER, '!bait:gw.test', query());
    const page = await hierarchy.page(USER, '!honest:gw.test', query());
    expect(page.rooms[1]).toMatchObject({ room_id: '!victim:good.test', name: 'Real' });
    expect(asked).toContainEqual({ server: 'good.test', roomId: '!victim:good.test' });
  });

  it('asks at most a bounded number of remote servers per page, and goes on on the next page', async () => {
    const children = Array.from({ length: 14 }, (_, i) => `!r${String(i).padStart(2, '0')}:remote.test`);
    await seed(store, '!space:gw.test', { space: true, children: children.map((id, i) => ({ id, via: ['remote.test'], order: String(i).padStart(2, '0') })) });
    for (const id of children) answers.set(`remote.test ${id}`, remoteAnswer(id, []));
    const first = await hierarchy.page(USER, '!space:gw.test', query({ limit: 100 }));
    expect(first.rooms).toHaveLength(1 + HIERARCHY_LIMITS.maxRemoteRequestsPerPage);
    expect(asked).toHaveLength(HIERARCHY_LIMITS.maxRemoteRequestsPerPage);
    const second = await hierarchy.page(USER, '!space:gw.test', query({ limit: 100, from: first.next_batch }));
    expect(ids(second.rooms)).toEqual(children.slice(HIERARCHY_LIMITS.maxRemoteRequestsPerPage));
    expect(second.next_batch).toBeUndefined();
  });

  it('when the page runs out of time on a slow server, it answers what it has and the next page asks again', async () => {
    await seed(store, '!space:gw.test', { space: true, children: [{ id: '!slow:slow.test', via: ['slow.test'] }, { id: '!after:gw.test' }] });
    await seed(store, '!after:gw.test');
    answers.set('slow.test !slow:slow.test', remoteAnswer('!slow:slow.test', []));
    const budget = HIERARCHY_LIMITS.pageBudgetMs;
    slowOnce = true;
    HIERARCHY_LIMITS.pageBudgetMs = 300;
    try {
      const first = await hierarchy.page(USER, '!space:gw.test', query());
      expect(ids(first.rooms)).toEqual(['!space:gw.test']);
      expect(first.next_batch).toBeDefined();
      const second = await hierarchy.page(USER, '!space:gw.test', query({ from: first.next_batch }));
      expect(ids(second.rooms)).toEqual(['!slow:slow.test', '!after:gw.test']);
    } finally {
      HIERARCHY_LIMITS.pageBudgetMs = budget;
    }
  });

  it('parses the query: limit above zero, max_depth not negative, both capped; suggested_only a boolean', () => {
    expect(parseHierarchyQuery({})).toEqual({ suggestedOnly: false, limit: HIERARCHY_LIMITS.defaultLimit, maxDepth: HIERARCHY_LIMITS.defaultMaxDepth, via: [] });
    expect(parseHierarchyQuery({ limit: '100000', max_depth: '99', suggested_only: 'true' })).toMatchObject({ limit: HIERARCHY_LIMITS.maxLimit, maxDepth: HIERARCHY_LIMITS.maxMaxDepth, suggestedOnly: true });
    for (const bad of [{ limit: '0' }, { limit: '-1' }, { max_depth: 'x' }, { suggested_only: 'yes' }]) expect(() => parseHierarchyQuery(bad)).toThrow(MatrixError);
  });
});
