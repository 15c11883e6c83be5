// Issue 14, spaces: GET /_matrix/federation/v1/hierarchy/{roomId} serves only what the asking server could
// peek or join, with the spec's rules for children_state and inaccessible_children.
import type { JsonObject } from '@fedgate/protocol';
import { INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

describe('federation /hierarchy', () => {
  let h: IngressHarness;
  const enc = encodeURIComponent;
  const hierarchy = (roomId: string, query: Record<string, string> = {}, client = h.remote.client()) =>
    client.getJson<any>(INGRESS_NAME, `/_matrix/federation/v1/hierarchy/${enc(roomId)}`, { query });

  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  async function room(roomId: string, options: { joinRule?: string; space?: boolean; visibility?: string; allow?: string[]; name?: string } = {}) {
    const r = await RoomBuilder.create(h, roomId, options.visibility ?? 'shared');
    if (options.space) await r.setState('m.room.create', '', { room_version: '10', type: 'm.space' });
    if (options.joinRule) {
      await r.setState('m.room.join_rules', '', {
        join_rule: options.joinRule,
        ...(options.allow ? { allow: options.allow.map((id) => ({ type: 'm.room_membership', room_id: id })) } : {}),
      });
    }
    if (options.name) await r.setState('m.room.name', '', { name: options.name });
    return r;
  }

  const link = (space: RoomBuilder, childId: string, content: JsonObject = { via: [INGRESS_NAME] }) => space.setState('m.space.child', childId, content);

  it('serves a public space with its accessible children, names the inaccessible ones and leaves out rooms it is not in', async () => {
    const space = await room('!space-a:ingress.test', { space: true, name: 'Space A' });
    const open = await room('!open-a:ingress.test', { name: 'Open' });
    const closed = await room('!closed-a:ingress.test', { joinRule: 'invite' });
    const peekable = await room('!peek-a:ingress.test', { joinRule: 'invite', visibility: 'world_readable' });
    await link(space, open.roomId, { via: [INGRESS_NAME], order: 'b' });
    await link(space, closed.roomId);
    await link(space, peekable.roomId, { via: [INGRESS_NAME], order: 'a' });
    await link(space, '!elsewhere:other.test', { via: ['other.test'] });
    await link(space, '!removed:ingress.test', {});

    const { body } = await hierarchy(space.roomId);
    expect(body.room).toMatchObject({ room_id: space.roomId, name: 'Space A', room_type: 'm.space', join_rule: 'public', num_joined_members: 1, room_version: '10' });
    // The spec's order: valid `order` first; then by timestamp. A link with no `via` is no link.
    expect(body.room.children_state.map((c: any) => c.state_key)).toEqual([peekable.roomId, open.roomId, closed.roomId, '!elsewhere:other.test']);
    expect(body.room.children_state[0]).toEqual({ type: 'm.space.child', state_key: peekable.roomId, content: { via: [INGRESS_NAME], order: 'a' }, sender: space.creator, origin_server_ts: expect.any(Number) });
    expect(body.children.map((c: any) => c.room_id)).toEqual([peekable.roomId, open.roomId]);
    expect(body.children[1]).toMatchObject({ name: 'Open', children_state: [] });
    expect(body.inaccessible_children).toEqual([closed.roomId]);
  });

  it('with suggested_only serves only the suggested children', async () => {
    const space = await room('!space-s:ingress.test', { space: true });
    const a = await room('!sugg-a:ingress.test');
    const b = await room('!sugg-b:ingress.test');
    await link(space, a.roomId, { via: [INGRESS_NAME], suggested: true });
    await link(space, b.roomId);
    const { body } = await hierarchy(space.roomId, { suggested_only: 'true' });
    expect(body.room.children_state.map((c: any) => c.state_key)).toEqual([a.roomId]);
    expect(body.children.map((c: any) => c.room_id)).toEqual([a.roomId]);
    expect(await refusal(hierarchy(space.roomId, { suggested_only: 'maybe' }))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('answers 404 to a server asking about an invite-only space it has no member in, and audits why', async () => {
    const space = await room('!secret-space:ingress.test', { space: true, joinRule: 'invite' });
    await link(space, (await room('!secret-child:ingress.test')).roomId);
    expect(await refusal(hierarchy(space.roomId))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
    // Unknown rooms answer the same, so the refusal does not tell a room exists.
    expect(await refusal(hierarchy('!never-heard-of:ingress.test'))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
    const record = await auditRecord(h, (r) => r.path.includes(enc(space.roomId)));
    expect(record).toMatchObject({ status: 404, reason: 'hierarchy_room_not_accessible', origin: h.remote.serverName });
  });

  it('serves an invite-only space to a server with a member invited or joined there, but not to another server', async () => {
    const space = await room('!members-space:ingress.test', { space: true, joinRule: 'invite' });
    await space.member(h.remote.user('alice'), 'invite');
    expect((await hierarchy(space.roomId)).body.room.room_id).toBe(space.roomId);
    expect(await refusal(hierarchy(space.roomId, {}, h.other.client()))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
  });

  it('serves a restricted child to a server joined to an allowed room, and names it inaccessible to one that is not', async () => {
    const space = await room('!r-space:ingress.test', { space: true });
    await space.member(h.remote.user('bob'), 'join', { serverName: h.remote.serverName, key: h.remote.key });
    const restricted = await room('!r-child:ingress.test', { joinRule: 'restricted', allow: [space.roomId] });
    await link(space, restricted.roomId);
    const forMember = (await hierarchy(space.roomId)).body;
    expect(forMember.children).toEqual([expect.objectContaining({ room_id: restricted.roomId, join_rule: 'restricted', allowed_room_ids: [space.roomId] })]);
    const forOther = (await hierarchy(space.roomId, {}, h.other.client())).body;
    expect(forOther.children).toEqual([]);
    expect(forOther.inaccessible_children).toEqual([restricted.roomId]);
  });

  it('does not list a child to a server the child room ACL denies', async () => {
    const space = await room('!acl-space:ingress.test', { space: true });
    const child = await room('!acl-child:ingress.test');
    // The test servers are named by IP literal: an ACL refusing IP literals denies them.
    await child.setState('m.room.server_acl', '', { allow: ['*'], deny: [], allow_ip_literals: false });
    await link(space, child.roomId);
    const forDenied = (await hierarchy(space.roomId)).body;
    expect(forDenied.children).toEqual([]);
    expect(forDenied.inaccessible_children).toEqual([child.roomId]);
    expect(await refusal(hierarchy(child.roomId))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('answers 404 for a room this server has left (its state here is stale)', async () => {
    const space = await room('!left-space:ingress.test', { space: true });
    await h.store.rooms.setJoinedServers(space.roomId, []);
    expect(await refusal(hierarchy(space.roomId))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
  });

  it('follows state changes: a child closed after it was served is named inaccessible on the next request', async () => {
    const space = await room('!change-space:ingress.test', { space: true });
    const child = await room('!change-child:ingress.test', { name: 'Before' });
    await link(space, child.roomId);
    expect((await hierarchy(space.roomId)).body.children).toEqual([expect.objectContaining({ room_id: child.roomId, name: 'Before' })]);
    await child.setState('m.room.join_rules', '', { join_rule: 'invite' });
    const after = (await hierarchy(space.roomId)).body;
    expect(after.children).toEqual([]);
    expect(after.inaccessible_children).toEqual([child.roomId]);
  });

  it('a room that is not a space has no children', async () => {
    const plain = await room('!plain:ingress.test');
    await link(plain, (await room('!plain-child:ingress.test')).roomId);
    const { body } = await hierarchy(plain.roomId);
    expect(body).toMatchObject({ room: { room_id: plain.roomId, children_state: [] }, children: [], inaccessible_children: [] });
  });
});

async function auditRecord(h: IngressHarness, predicate: (r: any) => boolean): Promise<any> {
  for (;;) {
    const found = (await h.store.audit.query({ direction: 'in', limit: 1000 })).find(predicate);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
