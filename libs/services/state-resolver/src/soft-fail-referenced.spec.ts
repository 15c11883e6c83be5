// Issue 10, defect 11: a soft-failed event that a later event references. As the spec ("Soft failure") and
// Synapse have it, the soft-failed event is not re-judged: it stays soft-failed (never relayed as a timeline
// event) but takes part in state resolution for the events built on it, the extremities behind it are
// covered, and if the resolved state comes to hold it the room log's state delta says so (chat-sync then
// tells the application service about it as state).
import { stateMapKey } from '@fedgate/room-state';
import { TestNetwork, type TestServer } from './testing/test-server';

describe('a soft-failed event referenced by a later event (issue 10, defect 11)', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
  });
  afterEach(() => network.close());

  const idOf = (reply: { ok: boolean; eventId?: string; error?: string }) => {
    if (!reply.ok) throw new Error(reply.error);
    return reply.eventId!;
  };

  it.each(['1', '10'])('in a version %s room: stays soft-failed, joins state resolution at the event built on it, and leaves no stale extremity', async (version) => {
    const alice = '@alice:a.test';
    const powerLevels = { users: { [alice]: 100 }, users_default: 0, events_default: 0, state_default: 0, ban: 50, kick: 50, invite: 0, redact: 50 };
    const roomId = await a.createRoom(alice, version, [{ type: 'm.room.power_levels', stateKey: '', content: powerLevels }]);
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    const carolJoin = idOf(await b.send(roomId, '@carol:b.test', 'm.room.member', { membership: 'join' }, { stateKey: '@carol:b.test' }));
    await a.receive(b, carolJoin);

    // Bob sets the topic on b while a bans him: a gets the topic after the ban.
    const topic = idOf(await b.send(roomId, '@bob:b.test', 'm.room.topic', { topic: 'sent before the ban reached b' }, { stateKey: '' }));
    const ban = idOf(await a.send(roomId, alice, 'm.room.member', { membership: 'ban' }, { stateKey: '@bob:b.test' }));
    await a.receive(b, topic);
    expect((await a.store.events.get(topic))?.status).toBe('soft_failed');
    expect(a.published.find((e) => e.eventId === topic)?.outcome).toBe('soft-failed');

    // b hears of the ban; carol's next message builds on both branches.
    await b.receive(a, ban);
    const merge = idOf(await b.send(roomId, '@carol:b.test', 'm.room.message', { body: 'after both' }));
    expect((await b.store.events.get(merge))?.prevEventIds.sort()).toEqual([ban, topic].sort());
    await a.receive(b, merge);

    expect((await a.store.events.get(merge))?.status).toBe('accepted');
    expect((await a.store.events.get(topic))?.status).toBe('soft_failed');
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([merge]);
    const atMerge = await a.store.state.stateBeforeEvent(merge);
    expect(atMerge).toBeDefined();
    // The spec's example: the original resolution keeps the topic, later ones put the ban first and drop it.
    const entry = a.published.find((e) => e.eventId === merge)!;
    const topicKey = stateMapKey('m.room.topic', '');
    const current = (await a.resolver.reader.currentState(roomId))!;
    if (version === '1') {
      expect(current.get(topicKey)).toBe(topic);
      expect(entry.stateDelta).toEqual({ [topicKey]: topic });
    } else {
      expect(current.get(topicKey)).toBeUndefined();
      expect(entry.stateDelta).toEqual({});
    }
    // Both servers agree on the state at the merge.
    expect((await a.resolver.reader.currentState(roomId))!.get(stateMapKey('m.room.topic', ''))).toBe((await b.resolver.reader.currentState(roomId))!.get(stateMapKey('m.room.topic', '')));
  });
});
