// Issue 14, erasure: a local user deactivated with `erase: true` has their events served redacted to servers
// that had no user joined at those events (they joined later), and whole to those that did.
import { INGRESS_NAME, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

describe('federation reads of an erased user’s events', () => {
  let h: IngressHarness;
  const enc = encodeURIComponent;
  const get = (path: string, query: Record<string, string>, client = h.remote.client()) => client.getJson<any>(INGRESS_NAME, path, { query });

  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  it('a server that joined after the events gets them redacted from /backfill and /event; one joined before gets them whole', async () => {
    const erin = `@erin:${INGRESS_NAME}`;
    const room = await RoomBuilder.create(h, '!erasure:ingress.test', 'shared');
    await room.member(erin, 'join');
    // The other server is joined while Erin speaks; the remote server joins only afterwards.
    await room.member(h.other.user('olga'), 'join', { serverName: h.other.serverName, key: h.other.key });
    const said = await room.message('erin says something personal', erin);
    await room.member(h.remote.user('alice'), 'join', { serverName: h.remote.serverName, key: h.remote.key });
    const latest = await room.message('the creator speaks after');
    await h.store.chatLifecycle.deactivate({ userId: erin, deactivatedTs: Date.now(), erased: true, appServiceId: 'bridge' });

    const backfill = (client = h.remote.client()) => get(`/_matrix/federation/v1/backfill/${enc(room.roomId)}`, { v: latest, limit: '50' }, client);
    const erinsIn = (pdus: any[]) => pdus.find((p) => p.sender === erin && p.type === 'm.room.message');
    expect(erinsIn((await backfill()).body.pdus).content).toEqual({});
    expect((await get(`/_matrix/federation/v1/event/${enc(said)}`, {})).body.pdus[0].content).toEqual({});
    // The creator's own message is untouched.
    expect((await backfill()).body.pdus.find((p: any) => p.content?.body === 'the creator speaks after')).toBeDefined();
    // A server that had a user joined when Erin spoke keeps the event whole.
    expect(erinsIn((await backfill(h.other.client())).body.pdus).content).toEqual({ msgtype: 'm.text', body: 'erin says something personal' });
  });

  it('without erasure (deactivated only) the events are served whole to a later joiner', async () => {
    const frank = `@frank:${INGRESS_NAME}`;
    const room = await RoomBuilder.create(h, '!no-erasure:ingress.test', 'shared');
    await room.member(frank, 'join');
    const said = await room.message('frank says', frank);
    await room.member(h.remote.user('alice'), 'join', { serverName: h.remote.serverName, key: h.remote.key });
    await h.store.chatLifecycle.deactivate({ userId: frank, deactivatedTs: Date.now(), erased: false, appServiceId: 'bridge' });
    expect((await get(`/_matrix/federation/v1/event/${enc(said)}`, {})).body.pdus[0].content).toEqual({ msgtype: 'm.text', body: 'frank says' });
  });
});
