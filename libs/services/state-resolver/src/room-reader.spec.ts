import { stateMapKey } from '@fedgate/room-state';
import { TestNetwork, type TestServer } from './testing/test-server';

describe('RoomReader', () => {
  let network: TestNetwork;
  let a: TestServer;
  let roomId: string;
  const ids: string[] = [];

  beforeAll(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    roomId = await a.createRoom('@alice:a.test', '10');
    for (const body of ['one', 'two', 'three']) {
      const r = await a.send(roomId, '@alice:a.test', 'm.room.message', { body });
      ids.push(r.ok ? r.eventId : '');
    }
  });
  afterAll(() => network.close());

  it('backfills from an event back through prev_events, deepest first, up to the limit', async () => {
    const pdus = await a.resolver.reader.backfill(roomId, [ids[2]], 3);
    expect(pdus.map((p) => p.content.body)).toEqual(['three', 'two', 'one']);
    expect(pdus[0].event_id).toBeUndefined();
    expect(await a.resolver.reader.backfill(roomId, [ids[2]], 100)).toHaveLength(8);
  });

  it('walks missing events between earliest and latest, oldest first', async () => {
    const pdus = await a.resolver.reader.missingEvents(roomId, { earliestEvents: [ids[0]], latestEvents: [ids[2]], limit: 10 });
    expect(pdus.map((p) => p.content.body)).toEqual(['two']);
  });

  it('serves the state before an event with its auth chain', async () => {
    const at = (await a.resolver.reader.stateIdsAt(roomId, ids[0]))!;
    const state = (await a.resolver.reader.currentState(roomId))!;
    expect(at.pduIds.sort()).toEqual([...state.values()].sort());
    expect(at.authChainIds).toContain(state.get(stateMapKey('m.room.create', '')));
    const full = (await a.resolver.reader.stateAt(roomId, ids[0]))!;
    expect(full.pdus).toHaveLength(at.pduIds.length);
    const auth = (await a.resolver.reader.eventAuth(roomId, ids[0]))!;
    expect(auth.map((p) => p.type).sort()).toEqual(['m.room.create', 'm.room.member', 'm.room.power_levels']);
    expect(await a.resolver.reader.stateIdsAt('!other:a.test', ids[0])).toBeUndefined();
  });

  it('lets servers with a joined member see events, and others not', async () => {
    expect(await a.resolver.reader.serverCanSee('a.test', ids[1])).toBe(true);
    expect(await a.resolver.reader.serverCanSee('b.test', ids[1])).toBe(false);
  });

  it('never serves a rejected event', async () => {
    await a.store.events.setOutcome(ids[1], { status: 'rejected', reason: 'test', outlier: false });
    expect(await a.resolver.reader.event(ids[1])).toBeUndefined();
    expect((await a.resolver.reader.backfill(roomId, [ids[2]], 3)).map((p) => p.content.body ?? p.type)).toEqual(['three', 'one', 'm.room.history_visibility']);
  });
});
