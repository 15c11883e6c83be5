// Issue 14: federation `publicRooms` with `filter` (search term, room types), `since` and `limit`; a `since` token
// cannot be forged into listing a room that is not published.
import { INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

const token = (roomId: string) => `r${Buffer.from(roomId, 'utf8').toString('base64url')}`;

describe('federation publicRooms: filter, since, limit', () => {
  let h: IngressHarness;
  let redactedTopicRoom: string;
  const post = async (body: unknown) => (await h.remote.client().postJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', body)).body;
  const ids = (page: { chunk: Array<{ room_id: string }> }) => page.chunk.map((r) => r.room_id);

  beforeAll(async () => {
    h = await startIngress();
    const room = async (roomId: string, name: string, published: boolean, type?: string) => {
      const r = await RoomBuilder.create(h, roomId, 'shared');
      await r.setState('m.room.name', '', { name });
      if (type) await r.setState('m.room.create', '', { room_version: '10', type });
      if (published) await h.store.roomDirectory.set({ roomId, visibility: 'public', appServiceId: null, updatedTs: 1 });
    };
    await room('!pr-a:ingress.test', 'Alpha chat', true);
    await room('!pr-b:ingress.test', 'Beta space', true, 'm.space');
    await room('!pr-c:ingress.test', 'Gamma hidden', false);
    await room('!pr-d:ingress.test', 'Delta chat', true);
    // Typed and ordered first so the other tests' filters and pages never meet it.
    redactedTopicRoom = '!pr-0:ingress.test';
    const withTopic = await RoomBuilder.create(h, redactedTopicRoom, 'shared');
    await withTopic.setState('m.room.create', '', { room_version: '10', type: 'org.example.redaction-test' });
    await withTopic.setState('m.room.name', '', { name: 'Epsilon' });
    const topicId = await withTopic.setState('m.room.topic', '', { topic: 'the redacted topic' });
    await h.store.redactions.apply({ redactionEventId: '$redacts-topic', targetEventId: topicId, roomId: redactedTopicRoom });
    await h.store.roomDirectory.set({ roomId: redactedTopicRoom, visibility: 'public', appServiceId: null, updatedTs: 1 });
  }, 60_000);
  afterAll(() => h.close());

  it('filters by search term and by room type (null: rooms without a type)', async () => {
    expect(ids(await post({ filter: { generic_search_term: 'BETA' } }))).toEqual(['!pr-b:ingress.test']);
    expect(ids(await post({ filter: { room_types: ['m.space'] } }))).toEqual(['!pr-b:ingress.test']);
    expect(ids(await post({ filter: { room_types: [null] } }))).toEqual(['!pr-a:ingress.test', '!pr-d:ingress.test']);
    expect(ids(await post({ filter: { generic_search_term: 'chat', room_types: [null, 'm.space'] } }))).toEqual(['!pr-a:ingress.test', '!pr-d:ingress.test']);
  });

  it('pages with limit and since through a filtered list, each room once', async () => {
    const first = await post({ limit: 1, filter: { generic_search_term: 'chat' } });
    expect(ids(first)).toEqual(['!pr-a:ingress.test']);
    const second = await post({ limit: 1, since: first.next_batch, filter: { generic_search_term: 'chat' } });
    expect(ids(second)).toEqual(['!pr-d:ingress.test']);
    expect(second.next_batch).toBeUndefined();
  });

  it('a since token forged to name an unpublished room lists only published rooms after it', async () => {
    const page = await post({ since: token('!pr-c:ingress.test') });
    expect(ids(page)).toEqual(['!pr-d:ingress.test']);
    const fromGet = (await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', { query: { since: token('!pr-b:ingress.test'), limit: '10' } })).body;
    expect(ids(fromGet)).toEqual(['!pr-d:ingress.test']);
    expect(ids(fromGet)).not.toContain('!pr-c:ingress.test');
  });

  it('serves a redacted state event in its redacted form (the directory once showed a redacted topic)', async () => {
    const entry = (await post({ filter: { generic_search_term: 'Epsilon' } })).chunk[0];
    expect(entry).toMatchObject({ room_id: redactedTopicRoom, name: 'Epsilon' });
    expect(entry.topic).toBeUndefined();
    expect((await post({ filter: { generic_search_term: 'redacted topic' } })).chunk).toEqual([]);
  });

  it('refuses malformed bodies with 400 M_BAD_JSON and a since it did not give with M_INVALID_PARAM', async () => {
    for (const body of [{ limit: 'ten' }, { since: 5 }, { filter: [] }, { filter: { room_types: 'm.space' } }, { filter: { generic_search_term: 3 } }]) {
      expect(await refusal(post(body))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    }
    expect(await refusal(post({ since: 'not-a-token' }))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(post({ limit: -1 }))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('include_all_networks lists the same rooms; a third-party network has none here; both together are a 400', async () => {
    expect(ids(await post({ include_all_networks: true, filter: { generic_search_term: 'chat' } }))).toEqual(['!pr-a:ingress.test', '!pr-d:ingress.test']);
    expect(await post({ third_party_instance_id: 'irc' })).toEqual({ chunk: [], total_room_count_estimate: 0 });
    expect(await refusal(post({ include_all_networks: true, third_party_instance_id: 'irc' }))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(post({ include_all_networks: 'yes' }))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
  });
});
