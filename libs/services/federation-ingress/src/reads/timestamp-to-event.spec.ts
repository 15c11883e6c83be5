// Issue 14: federation `timestamp_to_event` answers the closest event a server may see, by history visibility
// and the room's ACL, and only about rooms this server knows.
import { INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

describe('federation timestamp_to_event', () => {
  let h: IngressHarness;
  const enc = encodeURIComponent;
  const jump = (roomId: string, ts: number | string, dir: string, client = h.remote.client()) =>
    client.getJson<{ event_id: string; origin_server_ts: number }>(INGRESS_NAME, `/_matrix/federation/v1/timestamp_to_event/${enc(roomId)}`, { query: { ts: String(ts), dir } });

  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  /** Messages at 1000, 2000 (before the remote's join), the join, then 3000 and 4000. */
  async function room(roomId: string, visibility: string) {
    const r = await RoomBuilder.create(h, roomId, visibility);
    const at1000 = await r.messageAt('one', 1000);
    const at2000 = await r.messageAt('two', 2000);
    await r.member(h.remote.user('alice'), 'join', { serverName: h.remote.serverName, key: h.remote.key });
    const at3000 = await r.messageAt('three', 3000);
    const at4000 = await r.messageAt('four', 4000);
    return { r, at1000, at2000, at3000, at4000 };
  }

  it('finds the first event at or after ts going forward, the last at or before going back', async () => {
    const { r, at1000, at2000, at3000 } = await room('!tte-shared:ingress.test', 'shared');
    expect((await jump(r.roomId, 1500, 'f')).body).toEqual({ event_id: at2000, origin_server_ts: 2000 });
    expect((await jump(r.roomId, 1500, 'b')).body).toEqual({ event_id: at1000, origin_server_ts: 1000 });
    expect((await jump(r.roomId, 3000, 'f')).body.event_id).toBe(at3000);
  });

  it('under joined, the messages from before the server joined are skipped', async () => {
    const { r, at3000 } = await room('!tte-joined:ingress.test', 'joined');
    expect((await jump(r.roomId, 1500, 'f')).body).toEqual({ event_id: at3000, origin_server_ts: 3000 });
    // Back from 2500 there are only the two hidden messages (the room's state events are all later).
    expect(await refusal(jump(r.roomId, 2500, 'b'))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
  });

  it('refuses a server not in the room under shared history (404), an unknown room (404), and bad parameters (400)', async () => {
    const { r } = await room('!tte-outsider:ingress.test', 'shared');
    expect(await refusal(jump(r.roomId, 1500, 'f', h.other.client()))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
    expect(await refusal(jump('!unknown:ingress.test', 1500, 'f'))).toEqual({ status: 404, errcode: 'M_NOT_FOUND' });
    expect(await refusal(jump(r.roomId, 'yesterday', 'f'))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
    expect(await refusal(jump(r.roomId, 1500, 'up'))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('a world-readable room answers any server', async () => {
    const { r, at2000 } = await room('!tte-world:ingress.test', 'world_readable');
    expect((await jump(r.roomId, 1500, 'f', h.other.client())).body.event_id).toBe(at2000);
  });

  it('a server the room ACL denies is refused (403)', async () => {
    const { r } = await room('!tte-acl:ingress.test', 'world_readable');
    // ACLs match host names without their port: both test servers are 127.0.0.1.
    await r.setState('m.room.server_acl', '', { allow: ['*'], deny: ['127.0.0.1'] });
    expect(await refusal(jump(r.roomId, 1500, 'f', h.other.client()))).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
  });
});
