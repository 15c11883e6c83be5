// The resync of a partial-state room after a crash at each of its writes, and of a join cut short.
import { StateResolver } from './state-resolver';
import { Crash } from './testing/crash';
import { BOB, partiallyJoinedRoom, roomOfThree } from './testing/resync-replicas';
import { TestNetwork, type TestServer } from './testing/test-server';




function resolverOver(server: TestServer, network: TestNetwork, crash?: Crash): StateResolver {
  const deps = (server.resolver as unknown as { deps: ConstructorParameters<typeof StateResolver>[0] }).deps;
  return new StateResolver({ ...deps, store: crash ? crash.store(server.store) : server.store, bus: crash ? crash.bus(server.bus) : server.bus, keyRing: network.keyRing() });
}

describe('partial-state resync', () => {
  it('the join was recorded partial but never committed (a crash between): the resync drops the record, nothing else', async () => {
    const network = new TestNetwork();
    const joiner = await network.add('b.test');
    try {
      await joiner.store.partialStateRooms.begin({ roomId: '!cut:a.test', joinEventId: '$never', serversInRoom: ['a.test'], resident: 'a.test', startedTs: 1 });
      expect(await joiner.resolver.resync.resync('!cut:a.test')).toBeUndefined();
      expect(await joiner.store.partialStateRooms.get('!cut:a.test')).toBeUndefined();
    } finally {
      await network.close();
    }
  });

  it('defect: a crash at any write of a remote join (partial state) — the join became an extremity before its state refs were written, so the retried join failed with MissingStateError; now the retried join and the resync leave the resident\'s state', async () => {
    const withoutBob = (state: Map<string, string> | undefined) => new Map([...(state ?? [])].filter(([k]) => k !== `m.room.member\u0000${BOB}`));
    let dieAt = 1;
    for (; dieAt < 80; dieAt++) {
      const { network, resident, joiner, roomId } = await roomOfThree();
      try {
        const crash = new Crash(dieAt);
        const crashing = resolverOver(joiner, network, crash);
        crashing.resync.stop();
        const first = await crashing.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['a.test'] }).catch((err: Error) => ({ ok: false as const, error: err.message }));
        crashing.stop();
        if (!crash.died) {
          expect(first).toMatchObject({ ok: true });
          break;
        }
        const restarted = resolverOver(joiner, network);
        restarted.resync.stop();
        await restarted.repair();
        expect(await restarted.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
        await restarted.resync.resync(roomId);
        restarted.stop();
        expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
        const state = await joiner.resolver.timeline.currentState(roomId);
        expect(withoutBob(state)).toEqual(withoutBob(await resident.resolver.timeline.currentState(roomId)));
        expect((await joiner.store.events.get(state!.get(`m.room.member\u0000${BOB}`)!))?.pdu.content).toMatchObject({ membership: 'join' });
        expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
      } finally {
        await network.close();
      }
    }
    expect(dieAt).toBeGreaterThan(3);
  });

  it('a crash at any write of the resync: the resync after the restart ends where one never cut short ends', async () => {
    let dieAt = 1;
    for (; dieAt < 60; dieAt++) {
      const { network, resident, joiner, roomId } = await partiallyJoinedRoom();
      try {
        const crash = new Crash(dieAt);
        const crashing = resolverOver(joiner, network, crash);
        const first = await crashing.resync.resync(roomId).then(
          () => 'finished',
          (err: Error) => err.message,
        );
        crashing.stop();
        if (!crash.died) {
          expect(first).toBe('finished');
          break;
        }
        expect(first).toMatch(/simulated crash/);
        expect(await joiner.store.partialStateRooms.get(roomId)).toBeDefined();
        const restarted = resolverOver(joiner, network);
        await restarted.timeline.settlePending(roomId);
        expect(await restarted.resync.resync(roomId)).toMatchObject({ rejected: [] });
        restarted.stop();
        expect(await joiner.store.partialStateRooms.get(roomId)).toBeUndefined();
        expect(await joiner.resolver.timeline.currentState(roomId)).toEqual(await resident.resolver.timeline.currentState(roomId));
        expect(await joiner.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test']);
      } finally {
        await network.close();
      }
    }
    expect(dieAt).toBeGreaterThan(3);
  });
});
