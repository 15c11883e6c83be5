// Issue 19: what serving one remote join (make_join + send_join) costs the resident as the room grows, counted in
// store round trips and event records read (not timed). The answer itself carries the whole state, so it reads each
// state event once; before, make_join read every member to check the template, the commit read every member again to
// recompute the joined servers, and send_join read the served state twice: ~4 records per member per join.
import { computeEventId, generateSigningKey, signEvent, type SigningKey } from '@fedgate/protocol';
import type { Store } from '@fedgate/store';
import { TestNetwork, type TestServer } from './testing/test-server';

jest.setTimeout(120_000);

/** Counts calls to the store's repositories, and the records `events.get`/`getMany` return, in place (the resolver holds the same objects). */
function countStoreCalls(store: Store): { calls: number; recordsRead: number } {
  const counts = { calls: 0, recordsRead: 0 };
  for (const repo of Object.values(store)) {
    if (typeof repo !== 'object' || repo === null) continue;
    const names = new Set<string>();
    for (let proto = repo as object; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object) {
      for (const name of Object.getOwnPropertyNames(proto)) names.add(name);
    }
    for (const name of names) {
      const fn = (repo as Record<string, unknown>)[name];
      if (name === 'constructor' || typeof fn !== 'function') continue;
      const reads = repo === store.events && (name === 'getMany' || name === 'get');
      (repo as Record<string, unknown>)[name] = (...args: unknown[]) => {
        counts.calls++;
        const result = (fn as (...a: unknown[]) => unknown).apply(repo, args);
        if (!reads) return result;
        return (result as Promise<unknown>).then((found) => {
          counts.recordsRead += found instanceof Map ? found.size : found ? 1 : 0;
          return found;
        });
      };
    }
  }
  return counts;
}

const keys = new Map<string, SigningKey>();

async function serveMembership(resident: TestServer, roomId: string, serverName: string, membership: 'join' | 'leave'): Promise<void> {
  const key = keys.get(serverName) ?? generateSigningKey();
  keys.set(serverName, key);
  const userId = `@u:${serverName}`;
  const made = await resident.resolver.handshakes.makeMembership({ roomId, userId, membership, origin: serverName, supportedVersions: ['10'] });
  if (!made.ok) throw new Error(made.error);
  const signed = signEvent(made.event as never, '10', serverName, key);
  const sent = await resident.resolver.handshakes.sendMembership({ roomId, eventId: computeEventId(signed, '10'), membership, origin: serverName, event: signed as never });
  if (!sent.ok) throw new Error(sent.error);
}

describe('serving a join into a growing room (issue 19)', () => {
  const network = new TestNetwork();
  afterAll(() => network.close());

  it('serving a join reads each state event once and makes as many store calls at 100 members as at 10 (make_join and the commit read every member before)', async () => {
    const resident = await network.add('resident.test');
    const roomId = await resident.createRoom('@host:resident.test', '10');
    const counts = countStoreCalls(resident.store);
    const measured = new Map<number, { calls: number; recordsRead: number; stateSize: number }>();
    let joined = 0;
    for (const members of [10, 100]) {
      while (joined < members - 2) await serveMembership(resident, roomId, `s${joined++}.test`, 'join');
      const stateSize = (await resident.resolver.timeline.currentState(roomId))!.size;
      counts.calls = counts.recordsRead = 0;
      await serveMembership(resident, roomId, `s${joined++}.test`, 'join');
      measured.set(members, { calls: counts.calls, recordsRead: counts.recordsRead, stateSize });
    }
    const small = measured.get(10)!;
    const large = measured.get(100)!;
    expect(large.calls).toBe(small.calls);
    // The state served, plus the template's auth events, prev events and the commit's own few reads.
    expect(large.recordsRead).toBeLessThanOrEqual(large.stateSize + 20);
    expect(large.recordsRead - small.recordsRead).toBeLessThanOrEqual(large.stateSize - small.stateSize + 5);

    // The joined servers, now kept up to date from what changed rather than recomputed from every member, stay right.
    const servers = Array.from({ length: joined }, (_, i) => `s${i}.test`);
    expect(await resident.store.rooms.getJoinedServers(roomId)).toEqual(['resident.test', ...servers].sort());
    await serveMembership(resident, roomId, 's3.test', 'leave');
    expect(await resident.store.rooms.getJoinedServers(roomId)).toEqual(['resident.test', ...servers.filter((s) => s !== 's3.test')].sort());
  });

  it('a process dying after a served join was committed but before the joined servers were written: the repair counts them again from the state', async () => {
    const resident = await network.add('resident2.test');
    const roomId = await resident.createRoom('@host:resident2.test', '10');
    await serveMembership(resident, roomId, 'a.test', 'join');
    const died = jest.spyOn(resident.store.rooms, 'setJoinedServers').mockImplementationOnce(async () => {
      throw new Error('process died');
    });
    await expect(serveMembership(resident, roomId, 'b.test', 'join')).rejects.toThrow();
    died.mockRestore();
    expect(await resident.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'resident2.test']);

    await resident.resolver.repair(roomId);
    expect(await resident.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'resident2.test']);
    // Later joins count from the repaired list.
    await serveMembership(resident, roomId, 'c.test', 'join');
    expect(await resident.store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test', 'c.test', 'resident2.test']);
  });
});
