// Elastic replicas of one joining server over its one store, for tests of the partial-state resync under
// partition leases: the room joined with partial state, each replica's clock set by the test, its store writes
// counted, and the resident's /state_ids answer held back when asked, so a resync is in flight when the lease moves.
import type { ElasticOwnership } from '@fedgate/platform';
import type { Store } from '@fedgate/store';
import pino from 'pino';
import type { ResyncOutcome } from '../partial-state-resync';
import { StateResolver } from '../state-resolver';
import { TestNetwork, type TestServer } from './test-server';

const ALICE = '@alice:a.test';
export const BOB = '@bob:b.test';
export const TTL_MS = 60_000;
const WRITE = /^(save|derive|set|append|update|finish|begin|add|remove|ensure|record|write|raise|put|insert|delete)/;

/** The store with every write (of every repository) named in `writes`. */
function countingWrites(store: Store, onWrite: (write: string) => void = () => undefined): { store: Store; writes: string[] } {
  const writes: string[] = [];
  const wrapped = { ...store } as Record<string, unknown>;
  for (const [name, repo] of Object.entries(store)) {
    if (typeof repo !== 'object' || repo === null) continue;
    wrapped[name] = new Proxy(repo as object, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        const fn = (value as (...args: unknown[]) => unknown).bind(target);
        if (typeof key !== 'string' || !WRITE.test(key)) return fn;
        return (...args: unknown[]) => {
          writes.push(`${name}.${key}`);
          const done = fn(...args);
          onWrite(`${name}.${key}`);
          return done;
        };
      },
    });
  }
  return { store: wrapped as unknown as Store, writes };
}

export interface Replica {
  resolver: StateResolver;
  clock: { now: number };
  writes: string[];
  resynced: ResyncOutcome[];
  fenced: unknown[];
  /** Opens the held /state_ids answers (a replica built with `held`). */
  answer(): void;
}

/** A room of a.test with two users of c.test in it; b.test (its resync stopped) has not joined yet. */
export async function roomOfThree(options: { joinerStore?: Store } = {}) {
  const network = new TestNetwork();
  const resident = await network.add('a.test');
  const joiner = await network.add('b.test', { store: options.joinerStore });
  const third = await network.add('c.test');
  joiner.resolver.resync.stop();
  const roomId = await resident.createRoom(ALICE, '10', [{ type: 'm.room.name', stateKey: '', content: { name: 'r' } }]);
  for (const who of ['@c1:c.test', '@c2:c.test']) {
    const joined = await third.resolver.remoteMembership.onCommand({ roomId, userId: who, membership: 'join', via: ['a.test'] });
    if (!joined.ok) throw new Error(joined.error);
  }
  return { network, resident, joiner, roomId };
}

/** The room of three that b.test joined with partial state, then spoke in; b.test's own resync stopped. */
export async function partiallyJoinedRoom(options: { joinerStore?: Store } = {}) {
  const { network, resident, joiner, roomId } = await roomOfThree(options);
  const joined = await joiner.resolver.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['a.test'] });
  if (!joined.ok) throw new Error(joined.error);
  const sent = await joiner.send(roomId, BOB, 'm.room.message', { body: 'during partial state' });
  if (!sent.ok) throw new Error(sent.error);
  await resident.receive(joiner, sent.eventId);
  return { network, resident, joiner, roomId };
}

export function replica(joiner: TestServer, network: TestNetwork, instanceId: string, now: number, options: { held?: boolean; onWrite?: (write: string, clock: { now: number }) => void } = {}): Replica {
  const deps = (joiner.resolver as unknown as { deps: ConstructorParameters<typeof StateResolver>[0] }).deps;
  const clock = { now };
  const counted = countingWrites(joiner.store, (write) => options.onWrite?.(write, clock));
  let answer: () => void = () => undefined;
  const answered = options.held ? new Promise<void>((resolve) => (answer = resolve)) : Promise.resolve();
  const inner = deps.federation;
  const federation: typeof inner = {
    getJson: async (to, p, o) => {
      if (p.includes('/state_ids/')) await answered;
      return inner.getJson(to, p, o);
    },
    putJson: (to, p, body, o) => inner.putJson(to, p, body, o),
    postJson: (to, p, body, o) => inner.postJson(to, p, body, o),
  };
  const elastic: ElasticOwnership = { leases: joiner.store.leases, scope: 'test/state-resolver', instanceId, ttlMs: TTL_MS, logger: pino({ level: 'silent' }), now: () => clock.now };
  const resynced: ResyncOutcome[] = [];
  const fenced: unknown[] = [];
  const resolver = new StateResolver({
    ...deps,
    store: counted.store,
    federation,
    keyRing: network.keyRing(),
    elastic,
    onResynced: (outcome) => resynced.push(outcome),
    onCommitFenced: (error) => fenced.push(error),
  });
  return { resolver, clock, writes: counted.writes, resynced, fenced, answer };
}

/** The resync of the room under way in the replica (started in the background when it took the partition). */
export async function resyncUnderWay(r: Replica, roomId: string): Promise<{ ended: Promise<unknown> }> {
  for (let i = 0; i < 100 && !(r.resolver.resync as unknown as { running: Map<string, unknown> }).running.has(roomId); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  const running = (r.resolver.resync as unknown as { running: Map<string, Promise<unknown>> }).running.get(roomId);
  if (!running) throw new Error('no resync under way');
  const ended = running.then(
    () => 'finished',
    (err: unknown) => err,
  );
  return { ended };
}

export const rebalance = (r: Replica) => (r.resolver as unknown as { ownership: { rebalance(): Promise<void> } }).ownership.rebalance();
