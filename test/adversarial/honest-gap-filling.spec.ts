// The load generator's simulated homeserver answers /get_missing_events from its own events, as a homeserver
// does: a transaction that arrives before the one it follows fills its gap instead of waiting on /state_ids
// (which the simulator cannot answer for rooms it does not host) and being given up.
import type { SignedEvent } from '@fedgate/testing';
import { arena, ALICE, type Arena } from './setup';

describe('an honest peer fills the gaps it made', () => {
  let t: Arena;
  let roomId: string;
  beforeEach(async () => {
    t = await arena();
    t.evil.servesMissingEvents = true;
    roomId = await t.fedgate.createRoom(ALICE, '10');
    await t.evil.joinRoom(t.fedgate, roomId);
  });
  afterEach(() => t.network.close());

  const chain = async (n: number) => {
    const events: SignedEvent[] = [];
    for (let i = 0; i < n; i++) {
      const prev = events.at(-1);
      const fields = { type: 'm.room.message', sender: t.evil.user('mallory'), content: { body: `m${i}` } };
      events.push(await t.evil.eventIn(t.fedgate, roomId, prev ? { ...fields, prev_events: [prev.eventId], depth: (prev.pdu.depth as number) + 1 } : fields));
    }
    return events;
  };

  it('the last of three events, sent first, is accepted with the two before it fetched by get_missing_events', async () => {
    const [first, second, third] = await chain(3);
    const [delivery] = await t.evil.deliver(t.fedgate, [third]);
    expect(delivery).toEqual({ eventId: third.eventId, status: 'accepted' });
    for (const e of [first, second]) expect(await t.fedgate.store.events.get(e.eventId)).toMatchObject({ status: 'accepted' });
    expect(await t.fedgate.store.rooms.getForwardExtremities(roomId)).toEqual([third.eventId]);
  });

  it('answers oldest first, within the limit, and never past the earliest events the asker holds', async () => {
    const events = await chain(5);
    const ids = events.map((e) => e.eventId);
    expect(t.evil.missingEvents(roomId, { earliest_events: [ids[0]], latest_events: [ids[4]], limit: 10 })).toEqual(ids.slice(1, 4));
    expect(t.evil.missingEvents(roomId, { earliest_events: [ids[0]], latest_events: [ids[4]], limit: 2 })).toEqual([ids[2], ids[3]]);
    expect(t.evil.missingEvents('!other:evil.test', { earliest_events: [], latest_events: [ids[4]], limit: 10 })).toEqual([]);
  });
});
