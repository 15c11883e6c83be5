// Traffic for the chaos runs: one sender per side sending numbered messages as a bridge would (each retried
// under its txnId until answered), the wait for traffic both ways after a fault, and the final check that
// every answered message reached the other side's application service once, in the order sent. Also the set-up
// the chaos files share: the room both sides send in.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { testResultsDir, type FedgateInstance, type TestBridge } from '@fedgate/testing';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function eventually<T>(what: string, read: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs = 120_000, describe?: () => string): Promise<T> {
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

export const arrived = (bridge: TestBridge, eventId: string) => bridge.received.events((e) => e.event_id === eventId).length > 0;

/**
 * One sender: sequential messages, each retried under its txnId until answered, as a bridge would; the next
 * goes once the last reached the other side or a few seconds passed, so traffic runs at the pace the
 * system sustains and a backlog does not hide a stall.
 */
export class Sender {
  readonly answered: Array<{ body: string; eventId: string; at: number }> = [];
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    readonly bridge: TestBridge,
    private readonly userId: string,
    private readonly roomId: string,
    readonly tag: string,
    readonly receiver: TestBridge,
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
            for (let waited = 0; waited < 5_000 && this.running && !arrived(this.receiver, eventId); waited += 100) await sleep(100);
            break;
          } catch {
            await sleep(250);
          }
        }
        await sleep(100);
      }
    })();
  }

  /** The first message answered after `since`, once it reached the other side. */
  deliveredSince(since: number): boolean {
    const first = this.answered.find((m) => m.at > since);
    return Boolean(first && arrived(this.receiver, first.eventId));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Waits until a message each way answered after `since` reached the other side; returns when that was. */
export async function trafficBothWays(what: string, senders: readonly Sender[], since: number, timeoutMs = 180_000): Promise<number> {
  await eventually(
    `traffic both ways after ${what}`,
    () => senders.every((s) => s.deliveredSince(since)),
    (ok) => ok,
    timeoutMs,
    () => senders.map((s) => `${s.tag}: answered ${s.answered.length}, one after the fault ${s.answered.some((m) => m.at > since)}, delivered ${s.deliveredSince(since)}`).join('; '),
  );
  return Date.now();
}

/** Every answered message reached the other side's application service once, in the order sent; no body twice. */
export async function expectExactlyOnceInOrder(sender: Sender, roomId: string): Promise<void> {
  await eventually(
    `every message ${sender.tag} answered delivered`,
    () => sender.answered.every((m) => arrived(sender.receiver, m.eventId)),
    (ok) => ok,
    180_000,
    () => `${sender.answered.filter((m) => !arrived(sender.receiver, m.eventId)).length} of ${sender.answered.length} missing`,
  );
  const received = sender.receiver.received.events((e) => e.type === 'm.room.message' && e.room_id === roomId && sender.answered.some((m) => m.eventId === e.event_id));
  const ids = received.map((e) => e.event_id as string);
  const twice = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
  if (twice.length > 0) {
    // How each came twice (which transactions, when): printed, and kept beside the gateways' logs.
    const report = `${sender.tag}'s messages delivered more than once to ${sender.receiver.serverName}'s bridge:\n${twice.map((id) => sender.receiver.received.describeDuplicate(id)).join('\n')}`;
    console.error(report);
    await keepDiagnostics(`duplicates-${sender.tag}-${Date.now()}.txt`, `${report}\n\nevery transaction the bridge was sent:\n${transactionLog(sender.receiver)}`);
  }
  expect(twice).toEqual([]); // no duplicates
  expect(ids).toEqual(sender.answered.map((m) => m.eventId)); // all, in the order sent
  // The same body under two event IDs is a duplicate too (a retried send that made a second event).
  const bodies = sender.receiver.received
    .events((e) => e.room_id === roomId && typeof e.content?.body === 'string' && e.content.body.startsWith(`${sender.tag}-`))
    .map((e) => e.content.body as string);
  expect(new Set(bodies).size).toBe(bodies.length);
}

function transactionLog(bridge: TestBridge): string {
  return bridge.received.transactions
    .map((t) => `${new Date(t.receivedAt).toISOString()} txn ${t.txnId}${t.skippedAsRetry ? ' (skipped as retry)' : ''}: ${t.eventIds.join(' ')}`)
    .join('\n');
}

async function keepDiagnostics(file: string, text: string): Promise<void> {
  const dir = testResultsDir('chaos');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, file), text);
}

export interface TrafficBothWays {
  roomId: string;
  /** Alice on `a`, received by `b`'s bridge. */
  fromA: Sender;
  /** Bob on `b`, received by `a`'s bridge. */
  fromB: Sender;
}

/**
 * Alice (`a`'s bridge) creates a public room, Bob (`b`'s bridge) joins it over federation, and a sender each way
 * starts; answers once traffic flows both ways (stop the senders when done).
 */
export async function startTrafficBothWays(a: FedgateInstance, b: FedgateInstance, roomName: string): Promise<TrafficBothWays> {
  const bridgeA = a.bridge!;
  const bridgeB = b.bridge!;
  const alice = await bridgeA.registerVirtualUser('achat_alice');
  const bob = await bridgeB.registerVirtualUser('bchat_bob');
  const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: roomName });
  await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
  await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', 30_000);

  const fromA = new Sender(bridgeA, alice, roomId, 'A', bridgeB);
  const fromB = new Sender(bridgeB, bob, roomId, 'B', bridgeA);
  fromA.start();
  fromB.start();
  try {
    await eventually('traffic flowing', () => fromA.answered.length >= 3 && fromB.answered.length >= 3, (ok) => ok);
  } catch (err) {
    await Promise.all([fromA.stop(), fromB.stop()]);
    throw err;
  }
  return { roomId, fromA, fromB };
}
