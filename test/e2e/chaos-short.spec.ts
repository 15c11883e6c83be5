// Issue 12, the short chaos run of `npm test`: messages flow both ways between a distributed fedgate
// (ownership by lease) and an embedded one while each of the distributed one's service processes is
// killed -9 in turn and started again. Every message answered to its sender reaches the other side's
// application service exactly once and in the order sent; the time each fault took to recover from is
// printed (not asserted). FEDGATE_TEST_CHAOS_ROUNDS=<n> repeats the faults n times (the longer run).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTestCa, startFedgate, type FedgateInstance, type TestBridge } from '@fedgate/testing';

const LEASE_TTL_MS = 5_000;
/** Rounds of faults (each kills every service once); the longer run: FEDGATE_TEST_CHAOS_ROUNDS=10. */
const ROUNDS = Number(process.env.FEDGATE_TEST_CHAOS_ROUNDS ?? 1);

jest.setTimeout(300_000 + ROUNDS * 300_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(what: string, read: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs = 120_000, describe?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(read)
      .catch((err: unknown) => err as T);
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}${describe ? ` (${describe()})` : ''}`);
    await sleep(200);
  }
}

/**
 * One sender: sequential messages, each retried under its txnId until answered, as a bridge would; the next
 * goes once the last reached the other side or a few seconds passed, so traffic runs at the pace the
 * system sustains and a backlog does not hide a stall.
 */
class Sender {
  readonly answered: Array<{ body: string; eventId: string; at: number }> = [];
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly bridge: TestBridge,
    private readonly userId: string,
    private readonly roomId: string,
    private readonly tag: string,
    private readonly delivered: (eventId: string) => boolean,
  ) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; this.running; i++) {
        const body = `${this.tag}-${i}`;
        const txnId = `chaos-${this.tag}-${i}`;
        const client = this.bridge.asUser(this.userId);
        for (;;) {
          try {
            const { event_id: eventId } = await client.sendEvent(this.roomId, 'm.room.message' as never, { msgtype: 'm.text', body } as never, txnId);
            this.answered.push({ body, eventId, at: Date.now() });
            for (let waited = 0; waited < 5_000 && this.running && !this.delivered(eventId); waited += 100) await sleep(100);
            break;
          } catch {
            await sleep(250);
          }
        }
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

describe('chaos (short): kill -9 of each distributed service under traffic both ways', () => {
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    const ca = createTestCa();
    [a, b] = await Promise.all([
      startFedgate({ shape: 'distributed', ca, name: 'a', config: { replicas: { ownership: 'leases', leaseTtlMs: LEASE_TTL_MS } } }),
      startFedgate({ shape: 'embedded', ca, name: 'b' }),
    ]);
  }, 240_000);

  afterAll(async () => {
    // Keep the logs of both sides for a failed run (test-results/ is ignored by git).
    const dir = path.join(__dirname, '..', '..', 'test-results', 'chaos-short');
    await mkdir(dir, { recursive: true });
    for (const instance of [a, b]) if (instance) await writeFile(path.join(dir, `${instance.name}.log`), instance.logs());
    await Promise.all([a?.destroy(), b?.destroy()]);
  }, 60_000);

  it('loses nothing and delivers nothing twice; per-sender order holds', async () => {
    const bridgeA = a.bridge!;
    const bridgeB = b.bridge!;
    const alice = await bridgeA.registerVirtualUser('achat_alice');
    const bob = await bridgeB.registerVirtualUser('bchat_bob');
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'chaos' });
    await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', 30_000);

    const arrived = (bridge: TestBridge, eventId: string) => bridge.received.events((e) => e.event_id === eventId).length > 0;
    const fromA = new Sender(bridgeA, alice, roomId, 'A', (id) => arrived(bridgeB, id));
    const fromB = new Sender(bridgeB, bob, roomId, 'B', (id) => arrived(bridgeA, id));
    fromA.start();
    fromB.start();
    const recovery: Array<{ service: string; ms: number }> = [];
    try {
      await eventually('traffic flowing', () => fromA.answered.length >= 3 && fromB.answered.length >= 3, (ok) => ok);
      for (const victim of Array.from({ length: ROUNDS }, () => a.processes).flat()) {
        const killedAt = Date.now();
        await victim.stop('SIGKILL');
        await victim.start();
        // Recovered: a message each way sent after the kill has reached the other side.
        await eventually(
          `traffic both ways after kill -9 of ${victim.app}`,
          () => {
            const a1 = fromA.answered.find((m) => m.at > killedAt);
            const b1 = fromB.answered.find((m) => m.at > killedAt);
            return Boolean(a1 && b1 && arrived(bridgeB, a1.eventId) && arrived(bridgeA, b1.eventId));
          },
          (ok) => ok,
          120_000,
          () => {
            const a1 = fromA.answered.find((m) => m.at > killedAt);
            const b1 = fromB.answered.find((m) => m.at > killedAt);
            return `A sent after the kill: ${Boolean(a1)}, arrived at B: ${a1 ? arrived(bridgeB, a1.eventId) : '-'}; B sent: ${Boolean(b1)}, arrived at A: ${b1 ? arrived(bridgeA, b1.eventId) : '-'}; A answered ${fromA.answered.length}, B answered ${fromB.answered.length}; A's bridge got ${bridgeA.received.events().length} events`;
          },
        );
        recovery.push({ service: victim.app, ms: Date.now() - killedAt });
        await sleep(1_000);
      }
    } finally {
      await fromA.stop();
      await fromB.stop();
    }

    for (const [sender, receiver] of [
      [fromA, bridgeB],
      [fromB, bridgeA],
    ] as const) {
      await eventually(
        'every answered message delivered',
        () => sender.answered.every((m) => arrived(receiver, m.eventId)),
        (ok) => ok,
      );
      const received = receiver.received.events((e) => e.type === 'm.room.message' && e.room_id === roomId && sender.answered.some((m) => m.eventId === e.event_id));
      const ids = received.map((e) => e.event_id as string);
      expect(new Set(ids).size).toBe(ids.length); // no duplicates
      expect(ids).toEqual(sender.answered.map((m) => m.eventId)); // all, in the order sent
      // The same body under two event IDs is a duplicate too (a retried send that made a second event).
      const bodies = receiver.received.events((e) => e.room_id === roomId && typeof e.content?.body === 'string' && e.content.body.startsWith(`${sender === fromA ? 'A' : 'B'}-`)).map((e) => e.content.body as string);
      expect(new Set(bodies).size).toBe(bodies.length);
    }
    console.log(`chaos (short): ${fromA.answered.length} + ${fromB.answered.length} messages, lost 0, duplicated 0; recovery after kill -9: ${recovery.map((r) => `${r.service} ${r.ms} ms`).join(', ')}`);
  });
});
