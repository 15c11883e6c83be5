// Issue 14: a partial-state join between two fedgates (embedded, one pair for the file). B's user joins a room
// of A's with several members: A serves send_join with omit_members, B's room is usable at once, B resyncs
// its state from A (/state_ids at the join) and ends with A's state; a message each way meanwhile.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '@fedgate/store';
import { createTestCa, openInstanceStore, startFedgatePair, type FedgateInstance, type TestBridge } from '@fedgate/testing';

jest.setTimeout(120_000);

const WAIT_MS = 30_000;

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stateIds(bridge: TestBridge, userId: string, roomId: string): Promise<string> {
  const events = (await bridge.asUser(userId).roomState(roomId)) as unknown as Array<{ type: string; state_key: string; event_id: string }>;
  return JSON.stringify(events.map((e) => [`${e.type}|${e.state_key}`, e.event_id]).sort(([x], [y]) => (x! < y! ? -1 : 1)));
}

describe('partial-state join between two fedgates (embedded)', () => {
  let a: FedgateInstance;
  let b: FedgateInstance;
  let storeA: Store;
  let storeB: Store;

  beforeAll(async () => {
    const ca = createTestCa();
    [a, b] = await startFedgatePair({ shape: 'embedded', ca, name: 'pja' }, { shape: 'embedded', ca, name: 'pjb' });
  }, 240_000);

  afterAll(async () => {
    const dir = path.join(__dirname, '..', '..', 'test-results', 'partial-join');
    await mkdir(dir, { recursive: true });
    for (const instance of [a, b]) if (instance) await writeFile(path.join(dir, `${instance.name}.log`), instance.logs());
    await storeA?.close();
    await storeB?.close();
    await Promise.all([a?.destroy(), b?.destroy()]);
  }, 60_000);

  it("B joins A's room with partial state, sends and receives at once, and ends with A's state", async () => {
    const bridgeA = a.bridge!;
    const bridgeB = b.bridge!;
    const alice = await bridgeA.registerVirtualUser('pjachat_alice');
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'partial' });
    for (let i = 0; i < 8; i++) {
      const member = await bridgeA.registerVirtualUser(`pjachat_m${i}`);
      await bridgeA.asUser(member).joinRoom(roomId);
    }
    const bob = await bridgeB.registerVirtualUser('pjbchat_bob');
    await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    // The AS is told of its user's join at once, while the room is still partial.
    await bridgeB.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', WAIT_MS);

    const fromB = await bridgeB.asUser(bob).sendTextMessage(roomId, 'hello from the partial side');
    await bridgeA.waitForEvent((e) => e.event_id === fromB.event_id, WAIT_MS);
    const fromA = await bridgeA.asUser(alice).sendTextMessage(roomId, 'hello from the resident');
    await bridgeB.waitForEvent((e) => e.event_id === fromA.event_id, WAIT_MS);

    storeA = await openInstanceStore(a);
    storeB = await openInstanceStore(b);
    // The resync asked A for the state at B's join: B's join was a partial one.
    const asked = await eventually(
      async () => (await storeA.audit.query({ direction: 'in', origin: b.serverName, limit: 100 })).filter((r) => r.path.includes('/state_ids/')),
      (r) => r.length > 0,
    );
    expect(asked.length).toBeGreaterThan(0);
    await eventually(() => storeB.partialStateRooms.get(roomId), (r) => r === undefined);
    const atA = await stateIds(bridgeA, alice, roomId);
    expect(await eventually(() => stateIds(bridgeB, bob, roomId), (s) => s === atA)).toBe(atA);
    expect(JSON.parse(atA).filter(([k]: [string]) => k.startsWith('m.room.member|'))).toHaveLength(10);
  });
});
