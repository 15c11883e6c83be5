// Issue 10 defect 3 (follow-up): an operator can ask the running state-resolver to finish local commits
// cut short (`fedgate rooms repair` → cmd.repair), instead of waiting for a restart or the room's next work.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bus } from '@fedgate/bus';
import { StateResolver, TestNetwork, type TestServer } from '@fedgate/state-resolver';
import type { Store } from '@fedgate/store';
import { repairRooms } from './rooms-repair';

const alice = '@alice:a.test';

/** Another state-resolver process over the same store and bus, whose commits fail at the named step (never started). */
function dyingProcess(server: TestServer, network: TestNetwork, cut: 'bus publish' | 'store commit'): StateResolver {
  const failing = async () => {
    throw new Error(`simulated outage at ${cut}`);
  };
  const bus = cut === 'bus publish' ? (new Proxy(server.bus, { get: (t, k) => (k === 'publish' ? failing : (Reflect.get(t, k) as unknown)) }) as unknown as Bus) : server.bus;
  // The commit's store writes are one unit (store.commits.write); a send with a txnId journals its commit first.
  const commits = new Proxy(server.store.commits, { get: (t, k) => (k === 'write' ? failing : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind?.(t) ?? Reflect.get(t, k)) });
  const store = cut === 'store commit' ? ({ ...server.store, commits } as Store) : server.store;
  const unreachable = async () => {
    throw new Error('no federation in this test');
  };
  return new StateResolver({
    store,
    bus,
    topology: server.topology,
    identity: { serverName: server.name, signingKey: server.key },
    federation: { getJson: unreachable, putJson: unreachable, postJson: unreachable } as never,
    keyRing: network.keyRing(),
  });
}

function capture() {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
  return io;
}

describe('fedgate rooms repair (issue 10 defect 3: repair on demand)', () => {
  let network: TestNetwork;
  let a: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test', { start: true });
  });
  afterEach(() => network.close());

  async function halfCommitted(roomId: string, cut: 'bus publish' | 'store commit', body: string): Promise<string> {
    const failed = await dyingProcess(a, network, cut)
      .localEvents.onCommand({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body }, txnId: body })
      .catch((err: Error) => err);
    expect(failed).toBeInstanceOf(Error);
    const [pending] = await a.store.pendingCommits.list(roomId);
    expect(pending).toBeDefined();
    return pending.eventId;
  }

  it.each(['bus publish', 'store commit'] as const)('a commit cut short at the %s is settled by the command and published once', async (cut) => {
    const roomId = await a.createRoom(alice);
    const eventId = await halfCommitted(roomId, cut, `cut at ${cut}`);
    expect(a.published.filter((e) => e.eventId === eventId)).toEqual([]);

    const io = capture();
    expect(await repairRooms(a.bus, a.topology, {}, io)).toBe(0);
    expect(io.stderr).toBe('');
    expect(io.stdout).toBe(`${roomId}\tfinished 1: ${eventId}\tabandoned 0: \n`);
    expect(await a.store.pendingCommits.list()).toEqual([]);
    expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([eventId]);
    expect(a.published.filter((e) => e.eventId === eventId)).toHaveLength(1);

    const again = capture();
    expect(await repairRooms(a.bus, a.topology, { json: true }, again)).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual([]);
    expect(a.published.filter((e) => e.eventId === eventId)).toHaveLength(1);
  });

  it('--room repairs that room only, and answers with its outcome', async () => {
    const roomId = await a.createRoom(alice);
    const other = await a.createRoom(alice);
    const eventId = await halfCommitted(roomId, 'bus publish', 'in the room');
    const untouched = await halfCommitted(other, 'bus publish', 'in the other room');

    const io = capture();
    expect(await repairRooms(a.bus, a.topology, { room: roomId, json: true }, io)).toBe(0);
    expect(JSON.parse(io.stdout)).toEqual([{ roomId, finished: [eventId], abandoned: [] }]);
    expect((await a.store.pendingCommits.list()).map((c) => c.eventId)).toEqual([untouched]);
  });

  it('a room of another partition than the one asked is refused, and a bad room ID is a usage error', async () => {
    const roomId = await a.createRoom(alice);
    const p = a.topology.repair.subjectFor(roomId);
    const wrong = (a.topology.roomLog.partitionOf(roomId) + 1) % a.topology.roomPartitions;
    expect(await a.bus.request(p.replace(/\d+$/, String(wrong)), { partition: wrong, roomId })).toMatchObject({ ok: false, errcode: 'M_INVALID_PARAM' });
    const io = capture();
    expect(await repairRooms(a.bus, a.topology, { room: 'not-a-room' }, io)).toBe(2);
  });

  it('with no state-resolver serving, the command fails (exit 1) saying so, and the commit stays pending', async () => {
    const roomId = await a.createRoom(alice);
    await halfCommitted(roomId, 'bus publish', 'nobody repairs');
    await a.resolver.stop();
    const io = capture();
    expect(await repairRooms(a.bus, a.topology, { room: roomId }, io)).toBe(1);
    expect(io.stderr).toContain('no state-resolver serves it');
    expect(await a.store.pendingCommits.list(roomId)).toHaveLength(1);
  });
});

describe('the fedgate bin: rooms repair', () => {
  const root = path.resolve(__dirname, '..', '..', '..');
  const node = path.join(root, 'node_modules', '.bin', 'node');
  let dir: string;
  beforeAll(() => {
    execFileSync(node, [path.join(root, 'tools', 'build.mjs')], { cwd: root, stdio: 'ignore' });
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-rooms-repair-'));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('opens the configured bus; with no state-resolver answering (embedded: not in this process) it says so per partition and exits 1', () => {
    const configFile = path.join(dir, 'fedgate.yaml');
    writeFileSync(configFile, `serverName: rr.example\nmode: embedded\ndataDir: ${JSON.stringify(dir)}\n`);
    const r = spawnSync(node, [path.join(root, 'tools', 'cli', 'bin', 'fedgate.js'), 'rooms', 'repair', '--config', configFile, '--room', '!r:rr.example'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, FEDGATE_CONFIG: '' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^partition \d+: no state-resolver serves it \(is the gateway running\? embedded mode: restart it\)\n$/);
  });
});
