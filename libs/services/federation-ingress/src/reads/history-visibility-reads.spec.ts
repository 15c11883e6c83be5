// Issue 11 defect 3 and issue 16 defect 8: every federation read applies history visibility per event, reads
// never walk into another room, and a rejected event is no anchor for a read.
import { INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';

describe('federation reads and history visibility', () => {
  let h: IngressHarness;
  const get = (path: string, query?: Record<string, string | string[]>, client = h.remote.client()) => client.getJson<any>(INGRESS_NAME, path, query ? { query } : {});
  const post = (path: string, body: Record<string, unknown>, client = h.remote.client()) => client.postJson<any>(INGRESS_NAME, path, body);
  const enc = encodeURIComponent;

  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  /** A room under `visibility`: a message before the remote's invite, one while invited, its join, one after. */
  async function roomWithLateJoiner(roomId: string, visibility: string) {
    const room = await RoomBuilder.create(h, roomId, visibility);
    const alice = h.remote.user('alice');
    const remote = { serverName: h.remote.serverName, key: h.remote.key };
    const before = await room.message('said before the invite');
    const invite = await room.member(alice, 'invite');
    const whileInvited = await room.message('said while invited');
    const join = await room.member(alice, 'join', remote);
    const after = await room.message('said after the join');
    return { room, before, invite, whileInvited, join, after };
  }

  const withIds = (pdus: any[]) => pdus.map((p) => p.content?.body);

  describe('issue 11 defect 3: /backfill applies visibility to every event it walks, not only the start', () => {
    it('serves events from before the join redacted under joined, the rest whole', async () => {
      const r = await roomWithLateJoiner('!bf-joined:ingress.test', 'joined');
      const { body } = await get(`/_matrix/federation/v1/backfill/${enc(r.room.roomId)}`, { v: r.after, limit: '20' });
      const bodies = withIds(body.pdus);
      expect(bodies).toContain('said after the join');
      expect(bodies).not.toContain('said while invited');
      expect(bodies).not.toContain('said before the invite');
      // The DAG's shape is kept: the redacted events are there, without their content.
      const before = body.pdus.find((p: any) => p.type === 'm.room.message' && p.depth === 5);
      expect(before.content).toEqual({});
      expect(body.pdus).toHaveLength(9);
    });

    it('under invited serves what was said while the server was invited', async () => {
      const r = await roomWithLateJoiner('!bf-invited:ingress.test', 'invited');
      const { body } = await get(`/_matrix/federation/v1/backfill/${enc(r.room.roomId)}`, { v: r.after, limit: '20' });
      const bodies = withIds(body.pdus);
      expect(bodies).toEqual(expect.arrayContaining(['said after the join', 'said while invited']));
      expect(bodies).not.toContain('said before the invite');
    });

    it('under shared serves everything to a server in the room', async () => {
      const r = await roomWithLateJoiner('!bf-shared:ingress.test', 'shared');
      const { body } = await get(`/_matrix/federation/v1/backfill/${enc(r.room.roomId)}`, { v: r.after, limit: '20' });
      expect(withIds(body.pdus)).toEqual(expect.arrayContaining(['said after the join', 'said while invited', 'said before the invite']));
    });

    it('refuses a server not in the room, even from a start event under shared history', async () => {
      const r = await roomWithLateJoiner('!bf-outsider:ingress.test', 'shared');
      expect(await refusal(get(`/_matrix/federation/v1/backfill/${enc(r.room.roomId)}`, { v: r.after, limit: '20' }, h.other.client()))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    });
  });

  describe('issue 16 defect 8: get_missing_events returns what the server may not see redacted, not omitted', () => {
    it('under joined: the events before the join come back redacted, in depth order', async () => {
      const r = await roomWithLateJoiner('!gme-joined:ingress.test', 'joined');
      const { body } = await post(`/_matrix/federation/v1/get_missing_events/${enc(r.room.roomId)}`, { earliest_events: [], latest_events: [r.after], limit: 20 });
      const ids = body.events.map((e: any) => e.depth);
      expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
      const messages = body.events.filter((e: any) => e.type === 'm.room.message');
      expect(messages.map((e: any) => e.content)).toEqual([{}, {}]);
      expect(body.events.find((e: any) => e.state_key === h.remote.user('alice') && e.depth === 8)).toMatchObject({ content: { membership: 'join' } });
    });
  });

  describe('issue 11 defect 3: /event serves an event the server may not see redacted', () => {
    it('redacts a message from before the join under joined; serves the one after whole', async () => {
      const r = await roomWithLateJoiner('!event-joined:ingress.test', 'joined');
      const { body: early } = await get(`/_matrix/federation/v1/event/${enc(r.before)}`);
      expect(early.pdus[0]).toMatchObject({ type: 'm.room.message' });
      expect(early.pdus[0].content).toEqual({});
      const { body: late } = await get(`/_matrix/federation/v1/event/${enc(r.after)}`);
      expect(late.pdus[0].content.body).toBe('said after the join');
      expect(await refusal(get(`/_matrix/federation/v1/event/${enc(r.after)}`, undefined, h.other.client()))).toMatchObject({ status: 403 });
    });

    it('refuses /state_ids, /state and /event_auth at an event the server may not see', async () => {
      const r = await roomWithLateJoiner('!state-joined:ingress.test', 'joined');
      const room = enc(r.room.roomId);
      expect(await refusal(get(`/_matrix/federation/v1/state_ids/${room}`, { event_id: r.before }))).toMatchObject({ status: 403 });
      expect(await refusal(get(`/_matrix/federation/v1/state/${room}`, { event_id: r.before }))).toMatchObject({ status: 403 });
      expect(await refusal(get(`/_matrix/federation/v1/event_auth/${room}/${enc(r.before)}`))).toMatchObject({ status: 403 });
      const { body } = await get(`/_matrix/federation/v1/state_ids/${room}`, { event_id: r.after });
      expect(body.pdu_ids).toContain(r.join);
    });
  });

  describe('issue 11 defect 3: no read walks into another room, and a rejected event is no anchor', () => {
    async function privateAndPublic(tag: string) {
      const secret = await RoomBuilder.create(h, `!private-${tag}:ingress.test`, 'joined');
      const secretMessage = await secret.message('the private plan');
      const open = await RoomBuilder.create(h, `!public-${tag}:ingress.test`, 'shared');
      await open.member(h.remote.user('mallory'), 'join', { serverName: h.remote.serverName, key: h.remote.key });
      return { secret, secretMessage, open };
    }
    const remoteSigner = () => ({ serverName: h.remote.serverName, key: h.remote.key });

    it('GET /state/{public}?event_id=X, X a rejected event whose prev_events name a private-room event: 404, no private state', async () => {
      const { secret, secretMessage, open } = await privateAndPublic('state');
      // state-resolver judged X against the state its prev events lead to: the private room's.
      const x = await open.stray({ type: 'm.room.message', sender: h.remote.user('mallory'), prev_events: [secretMessage], auth_events: [], content: { body: 'x' } }, remoteSigner(), 'rejected', secret.snapshot());
      expect(await refusal(get(`/_matrix/federation/v1/state/${enc(open.roomId)}`, { event_id: x }))).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
      expect(await refusal(get(`/_matrix/federation/v1/state_ids/${enc(open.roomId)}`, { event_id: x }))).toMatchObject({ status: 404 });
      expect(await refusal(get(`/_matrix/federation/v1/backfill/${enc(open.roomId)}`, { v: x }))).toMatchObject({ status: 404 });
      expect(await refusal(post(`/_matrix/federation/v1/get_missing_events/${enc(open.roomId)}`, { earliest_events: [], latest_events: [x], limit: 10 }))).toMatchObject({ status: 404 });
    });

    it('backfill and get_missing_events from an event whose prev_events name another room stop at the room edge', async () => {
      const { secretMessage, open } = await privateAndPublic('walk');
      const y = await open.stray({ type: 'm.room.message', sender: h.remote.user('mallory'), prev_events: [secretMessage], auth_events: [], content: { body: 'y' } }, remoteSigner(), 'accepted', open.snapshot());
      const { body: backfill } = await get(`/_matrix/federation/v1/backfill/${enc(open.roomId)}`, { v: y, limit: '50' });
      expect(backfill.pdus.map((p: any) => p.room_id)).toEqual([open.roomId]);
      const { body: missing } = await post(`/_matrix/federation/v1/get_missing_events/${enc(open.roomId)}`, { earliest_events: [], latest_events: [y], limit: 50 });
      expect(missing.events).toEqual([]);
    });

    it('even an accepted anchor whose recorded state names another room serves only its own room', async () => {
      const { secret, open } = await privateAndPublic('accepted-state');
      const mixed = new Map([...open.snapshot(), ...secret.snapshot()].filter(([key]) => !key.includes('m.room.create')).concat([...open.snapshot()].filter(([key]) => key.includes('m.room.create'))));
      const y = await open.stray({ type: 'm.room.message', sender: h.remote.user('mallory'), prev_events: [], auth_events: [], content: { body: 'y' } }, remoteSigner(), 'accepted', mixed);
      const { body } = await get(`/_matrix/federation/v1/state/${enc(open.roomId)}`, { event_id: y });
      expect(body.pdus.length).toBeGreaterThan(0);
      for (const pdu of [...body.pdus, ...body.auth_chain]) expect(pdu.room_id).toBe(open.roomId);
    });

    it('GET /event_auth/{public}/Y, Y naming a private message in auth_events: no private event comes back', async () => {
      const { secretMessage, open } = await privateAndPublic('auth');
      const auth = [...open.stateIds()];
      const rejected = await open.stray({ type: 'm.room.message', sender: h.remote.user('mallory'), prev_events: [], auth_events: [secretMessage, ...auth], content: { body: 'y' } }, remoteSigner(), 'rejected', open.snapshot());
      expect(await refusal(get(`/_matrix/federation/v1/event_auth/${enc(open.roomId)}/${enc(rejected)}`))).toMatchObject({ status: 404 });
      const accepted = await open.stray({ type: 'm.room.message', sender: h.remote.user('mallory'), prev_events: [], auth_events: [secretMessage, ...auth], content: { body: 'z' } }, remoteSigner(), 'accepted', open.snapshot());
      const { body } = await get(`/_matrix/federation/v1/event_auth/${enc(open.roomId)}/${enc(accepted)}`);
      expect(body.auth_chain.length).toBeGreaterThan(0);
      expect(body.auth_chain.map((p: any) => p.event_id ?? p.room_id)).not.toContain(secretMessage);
      for (const pdu of body.auth_chain) expect(pdu.room_id).toBe(open.roomId);
    });
  });
});
