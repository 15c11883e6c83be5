import { roomVersionRules } from '@fedgate/protocol';
import { toRoomEvent } from '@fedgate/room-state';
import { finishEvent } from './event-builder';
import { recordFor } from './room-timeline';
import { TestNetwork, type TestServer } from './testing/test-server';

describe('outbound backfill', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
  });
  afterEach(() => network.close());

  /** a.test holds a room with eight messages of history; b.test joins after them. */
  async function roomWithHistory(): Promise<{ roomId: string; history: string[]; joinId: string }> {
    const roomId = await a.createRoom('@alice:a.test');
    const history: string[] = [];
    for (let i = 0; i < 8; i++) {
      const sent = await a.send(roomId, '@alice:a.test', 'm.room.message', { msgtype: 'm.text', body: `history ${i}` });
      if (!sent.ok) throw new Error(sent.error);
      history.push(sent.eventId);
    }
    const joined = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] });
    if (!joined.ok) throw new Error(joined.error);
    return { roomId, history, joinId: joined.eventId };
  }

  const timelineMessages = async (server: TestServer, roomId: string) =>
    (await server.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: 1_000, limit: 1_000 }))
      .filter((r) => !r.outlier && r.status === 'accepted' && r.type === 'm.room.message')
      .map((r) => r.pdu.content.body)
      .reverse();

  it('finds the join as the backward extremity, asks a.test, and keeps the history in the timeline without moving the room on', async () => {
    const { roomId, joinId } = await roomWithHistory();
    expect(await timelineMessages(b, roomId)).toEqual([]);
    expect((await b.resolver.backfill.backwardExtremities(roomId, 1_000)).eventIds).toEqual([joinId]);
    const extremities = await b.store.rooms.getForwardExtremities(roomId);
    const room = await b.store.rooms.get(roomId);
    const published = b.published.length;

    const reply = await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 50 });

    expect(reply).toEqual({ ok: true, stored: expect.any(Number), complete: true });
    expect(network.requests.some((r) => r.from === 'b.test' && r.path.startsWith('/_matrix/federation/v1/backfill/'))).toBe(true);
    expect(await timelineMessages(b, roomId)).toEqual(Array.from({ length: 8 }, (_, i) => `history ${i}`));
    expect(await b.store.rooms.getForwardExtremities(roomId)).toEqual(extremities);
    expect((await b.store.rooms.get(roomId))!.currentStateId).toBe(room!.currentStateId);
    expect(b.published.length).toBe(published);
    // Nothing earlier is missing now: another request asks nobody.
    const asked = network.requests.length;
    expect(await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 50 })).toEqual({ ok: true, stored: 0, complete: true });
    expect(network.requests.length).toBe(asked);
  });

  it('pages: a small limit brings the newest history first, the next request the rest', async () => {
    const { roomId } = await roomWithHistory();
    const first = await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 4 });
    expect(first).toMatchObject({ ok: true, complete: false });
    expect(await timelineMessages(b, roomId)).toEqual(['history 5', 'history 6', 'history 7']);
    let reply = first;
    for (let round = 0; round < 10 && reply.ok && !reply.complete; round++) reply = await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 4 });
    expect(reply).toMatchObject({ ok: true, complete: true });
    expect(await timelineMessages(b, roomId)).toEqual(Array.from({ length: 8 }, (_, i) => `history ${i}`));
  });

  it('a history event that fails auth is kept rejected with the reason, and not shown', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    const sent = await a.send(roomId, '@alice:a.test', 'm.room.message', { msgtype: 'm.text', body: 'before' });
    if (!sent.ok) throw new Error(sent.error);
    // a.test (misbehaving) holds a message from someone never joined, signed by a.test, and builds on it.
    const base = (await a.store.events.get(sent.eventId))!;
    const forged = finishEvent({ ...base.pdu, sender: '@mallory:a.test', content: { msgtype: 'm.text', body: 'forged' }, prev_events: [sent.eventId], depth: base.depth + 1 }, roomVersionRules('12'), {
      serverName: 'a.test',
      signingKey: a.key,
    });
    await a.store.events.append(recordFor(forged.eventId, roomId, forged.pdu, toRoomEvent(forged.pdu, forged.eventId), 'accepted', undefined, false));
    await a.store.rooms.updateForwardExtremities(roomId, { add: [forged.eventId], remove: [sent.eventId] });
    await a.store.state.setForEvent(forged.eventId, (await a.store.state.getForEvent(sent.eventId))!);
    const joined = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] });
    expect(joined).toMatchObject({ ok: true });

    expect(await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 50 })).toMatchObject({ ok: true });
    const kept = await b.store.events.get(forged.eventId);
    expect(kept).toMatchObject({ status: 'rejected', outlier: false });
    expect(kept!.reason).toMatch(/auth events/);
    expect(await timelineMessages(b, roomId)).toEqual(['before']);
  });

  it('every server down: a 502 with the reasons, and an audit record per server asked', async () => {
    const { roomId } = await roomWithHistory();
    network.down.add('a.test');
    const reply = await b.resolver.backfill.onCommand({ roomId, atOrBelowDepth: 1_000, limit: 50 });
    expect(reply).toMatchObject({ ok: false, errcode: 'M_UNKNOWN', status: 502 });
    expect(!reply.ok && reply.error).toMatch(/a\.test/);
    const audit = await b.store.audit.query({ destination: 'a.test', reason: 'backfill_failed' });
    expect(audit).toHaveLength(1);
    expect(await b.resolver.backfill.onCommand({ roomId: '!unknown:b.test', atOrBelowDepth: 1, limit: 5 })).toMatchObject({ ok: false, errcode: 'M_NOT_FOUND' });
  });
});
