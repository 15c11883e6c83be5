// Issue 19, distributed mode, "work really spreads": two state-resolver processes (leases, real NATS and the
// MongoDB-wire store) split the room partitions, and each one handles the inbound PDUs of the rooms in its own
// partitions and none of the other's — counted per replica from its own /metrics (`fedgate_bus_handled_total` of
// the `state-resolver-pdu-<p>` consumers). Then one is paused (SIGSTOP): the other takes its partitions and handles
// their PDUs. Counted, not timed.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { partitionOf } from '@fedgate/bus';
import type { Store } from '@fedgate/store';
import { createTestCa, FedgateProcess, waitUntil, findFreePort, openInstanceStore, startFedgate, type FedgateInstance, type TestBridge } from '@fedgate/testing';
import { parse } from 'yaml';
import { RoomSender, SimulatedHomeserver } from '../load/src/simulated-homeserver';

const LEASE_TTL_MS = 3_000;
const PARTITIONS = 16;
const ROOMS = 4;
const PER_ROOM = 10;

jest.setTimeout(300_000);

/** One state-resolver process with a /metrics listener of its own. */
class Replica {
  constructor(
    readonly process: FedgateProcess,
    private readonly metricsPort: number,
  ) {}

  /** The instance ID it names itself by (its leases' holder). */
  instanceId(): string | undefined {
    return [...this.process.logs().matchAll(/"service\.instance\.id":"([^"]+)"/g)].at(-1)?.[1];
  }

  /** Inbound PDUs acked so far, by room partition. */
  async handledByPartition(): Promise<Map<number, number>> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    const out = new Map<number, number>();
    for (const line of (await res.text()).split('\n').filter((l) => l.startsWith('fedgate_bus_handled_total{') && l.includes('outcome="ack"'))) {
      const partition = /consumer="[^"]*-state-resolver-pdu-(\d+)"/.exec(line)?.[1];
      if (partition !== undefined) out.set(Number(partition), Number(line.split(' ').pop()));
    }
    return out;
  }
}

const minus = (after: Map<number, number>, before: Map<number, number>) =>
  new Map([...after].map(([p, n]) => [p, n - (before.get(p) ?? 0)] as const).filter(([, n]) => n > 0));
const sum = (counts: Map<number, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

describe('two state-resolver replicas share the inbound work (issue 19, distributed, leases)', () => {
  let instance: FedgateInstance;
  let replicas: Replica[];
  let sim: SimulatedHomeserver;
  let store: Store;
  let scope: string;
  let rooms: RoomSender[];
  const bridge = (): TestBridge => instance.bridge!;

  beforeAll(async () => {
    const ca = createTestCa();
    instance = await startFedgate({ shape: 'distributed', ca, name: 'spread', bridgePrefix: 'spreadchat', logLevel: 'info', config: { replicas: { ownership: 'leases', leaseTtlMs: LEASE_TTL_MS } } });
    // The instance's own state-resolver makes way for two with a /metrics listener each.
    await instance.processes.find((p) => p.app === 'state-resolver')!.stop();
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('FEDGATE_') || name.startsWith('FEDGATE_TEST_')) env[name] = value;
    env.FEDGATE_CONFIG = instance.configPath;
    replicas = [];
    for (const n of [1, 2]) {
      const port = await findFreePort();
      const replica = new Replica(new FedgateProcess('state-resolver', { ...env, FEDGATE_METRICS_PORT: String(port) }, path.join(instance.dataDir, `state-resolver-r${n}.log`)), port);
      await replica.process.start();
      replicas.push(replica);
    }
    store = await openInstanceStore(instance);
    scope = `${(parse(await readFile(instance.configPath, 'utf8')) as { bus: { prefix: string } }).bus.prefix}/state-resolver`;
    sim = await SimulatedHomeserver.start(ca);
  }, 240_000);

  afterAll(async () => {
    for (const replica of replicas ?? []) replica.process.signal('SIGCONT');
    await sim?.stop();
    await store?.close();
    await Promise.all((replicas ?? []).map((r) => r.process.close()));
    await instance?.destroy();
  }, 60_000);

  const holders = async () => new Map((await store.leases.live(`${scope}/partitions/`)).map((l) => [Number(l.name.split('/').pop()), l.holder]));

  /** Sends PER_ROOM messages into each room, one transaction per room; then waits until `counted` replicas have acked that many more. */
  async function sendInto(targets: RoomSender[], label: string, counted: Replica[]): Promise<Map<number, number>[]> {
    const before = await Promise.all(counted.map((r) => r.handledByPartition()));
    for (const room of targets) {
      const events = Array.from({ length: PER_ROOM }, (_, i) => room.nextMessage(`${label} ${i}`));
      expect(await sim.send(instance.serverName, events)).toEqual({ status: 200, errors: [] });
    }
    const handled = async () => (await Promise.all(counted.map((r) => r.handledByPartition()))).map((after, i) => minus(after, before[i]!));
    await waitUntil(`${targets.length * PER_ROOM} PDUs handled (${label})`, async () => sum(new Map((await handled()).flatMap((m) => [...m]))), (n) => n >= targets.length * PER_ROOM, 180_000);
    return handled();
  }

  it('each replica handles exactly the PDUs of the rooms in its own partitions, both handle some, and a paused one\'s partitions are handled by the other', async () => {
    const [first, second] = replicas as [Replica, Replica];
    // Split, and settled: the same owners a lease period later (the split is reached by handing partitions over).
    let seen = '';
    const owners = await waitUntil(
      'the partitions split between the two, settled',
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_TTL_MS));
        return holders();
      },
      (h) => {
        const same = JSON.stringify([...h]) === seen;
        seen = JSON.stringify([...h]);
        return same && h.size === PARTITIONS && [...new Set(h.values())].map((holder) => [...h.values()].filter((x) => x === holder).length).join() === `${PARTITIONS / 2},${PARTITIONS / 2}`;
      },
      120_000,
    );
    const idOf = new Map(replicas.map((r) => [r.instanceId()!, r] as const));
    expect(new Set(owners.values())).toEqual(new Set(idOf.keys()));

    // Rooms until each replica owns at least two of them.
    const host = await bridge().registerVirtualUser('spreadchat_host');
    const created: string[] = [];
    const ownedBy = (replica: Replica) => created.filter((roomId) => idOf.get(owners.get(partitionOf(roomId, PARTITIONS))!) === replica);
    while (created.length < ROOMS || ownedBy(first).length < 2 || ownedBy(second).length < 2) {
      if (created.length >= 4 * ROOMS) throw new Error('the rooms did not land in both replicas\' partitions');
      const room = await waitUntil('a room created', () => bridge().asUser(host).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never), (r) => typeof r?.room_id === 'string');
      created.push(room.room_id);
    }
    rooms = [];
    for (const roomId of created) {
      const room = await waitUntil('the simulator joined', () => sim.join(instance.serverName, roomId), (r) => r instanceof RoomSender);
      await bridge().waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.member' && e.state_key === room.sender, 30_000);
      rooms.push(room);
    }
    const expectedPerPartition = (targets: RoomSender[]) => {
      const out = new Map<number, number>();
      for (const room of targets) out.set(partitionOf(room.room.roomId, PARTITIONS), (out.get(partitionOf(room.room.roomId, PARTITIONS)) ?? 0) + PER_ROOM);
      return out;
    };

    const handled = await sendInto(rooms, 'spread', replicas);
    expect(await holders()).toEqual(owners);
    const expected = expectedPerPartition(rooms);
    for (const [i, replica] of replicas.entries()) {
      const own = new Map([...expected].filter(([p]) => idOf.get(owners.get(p)!) === replica));
      process.stdout.write(`state-resolver spread: replica ${i + 1} handled ${sum(handled[i]!)} PDUs in partitions ${[...handled[i]!.keys()].sort((a, b) => a - b).join(',')}\n`);
      expect(handled[i]).toEqual(own);
      expect(sum(handled[i]!)).toBeGreaterThanOrEqual(2 * PER_ROOM);
    }
    expect(sum(handled[0]!) + sum(handled[1]!)).toBe(rooms.length * PER_ROOM);

    // The second pauses; once its leases expire, the first holds every partition and handles its rooms' PDUs.
    second.process.signal('SIGSTOP');
    try {
      await waitUntil('the running replica took every partition', holders, (h) => h.size === PARTITIONS && [...h.values()].every((holder) => idOf.get(holder) === first));
      const orphaned = rooms.filter((room) => idOf.get(owners.get(partitionOf(room.room.roomId, PARTITIONS))!) === second);
      const [takenOver] = await sendInto(orphaned, 'taken over', [first]);
      expect(takenOver).toEqual(expectedPerPartition(orphaned));
    } finally {
      second.process.signal('SIGCONT');
    }
    // Nothing reached the application service twice.
    const ids = bridge().received.all().map((r) => r.event.event_id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
