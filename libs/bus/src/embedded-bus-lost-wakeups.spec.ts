// A one-at-a-time loop that decides to sleep without looking again (its settle's claim found nothing pending, or it
// was woken by a publish and claims without a look) must still be woken by any publish that lands after its last
// look. A lost wake-up shows only as a message that waits forever: here every point where a loop decides to sleep is
// raced by a publish, at each await that can follow it, with no poll or timer left to rescue the loop.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ReceivedMessage } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus, SLICE_MS } from './embedded-bus';
import type { InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const pdu = (n: number): InboundPdu => ({ eventId: `$${n}`, roomId: '!r:x', roomVersion: '10', origin: 'remote.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

/** Where the racing publish is made: right after the loop's bus call returns, or inside the handler. */
const POINTS = ['claimRun', 'claimPublishedRun', 'settleRun', 'waitHint', 'handler'] as const;
type Point = (typeof POINTS)[number];
/** How long after that point: at once, after a microtask, after 1–3 turns of the event loop, after a 0 ms timer. */
const DELAYS = ['sync', 'microtask', 'immediate1', 'immediate2', 'immediate3', 'timeout0'] as const;
type Delay = (typeof DELAYS)[number];

async function after(delay: Delay): Promise<void> {
  if (delay === 'sync') return;
  if (delay === 'microtask') return Promise.resolve();
  if (delay === 'timeout0') return new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < Number(delay.slice(-1)); i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('embedded bus: no lost wake-up (issue 19, paced CPU: loops sleep without a last look)', () => {
  let dir: string;
  const buses: EmbeddedBus[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-wakeups-'));
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * For each point and delay: a lone message sets the loop going; at the point, once, a second message is published
   * (by this bus, or by another process's bus on the same file); both must be handled. `pollIntervalMs`: the
   * consumer's bus looks for other processes' commits this often (an hour: never within the test).
   */
  async function race(publisher: 'this process' | 'another process', pollIntervalMs: number): Promise<Point[]> {
    const topology = busTopology({ prefix: 'race', roomPartitions: 1 });
    const file = path.join(dir, 'bus.sqlite');
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs });
    buses.push(bus);
    await bus.start();
    const other = publisher === 'another process' ? new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 3_600_000 }) : bus;
    if (other !== bus) buses.push(other);
    const subject = topology.inboundPdu.subjectFor('!r:x');
    let armed: { point: Point; delay: Delay; n: number } | undefined;
    /** The trigger's handler holds the thread for a slice, so the loop yields a turn after the settle (before sleeping). */
    let holdSlice = false;
    const racing: Promise<unknown>[] = [];
    const fire = (point: Point) => {
      if (armed?.point !== point) return;
      const { delay, n } = armed;
      armed = undefined;
      racing.push(after(delay).then(() => other.publish(subject, pdu(n), { messageId: `m${n}` })));
    };
    for (const point of ['claimRun', 'claimPublishedRun', 'settleRun', 'waitHint'] as const) {
      const real = (bus[point] as (...args: unknown[]) => unknown).bind(bus);
      jest.spyOn(bus, point).mockImplementation(((...args: unknown[]) => {
        const result = real(...args);
        fire(point);
        return result;
      }) as never);
    }
    const handled: number[] = [];
    await bus.consume(topology.consumers.stateResolverInbound(0), (m: ReceivedMessage<InboundPdu>) => {
      handled.push(Number(m.data.pdu.n));
      if (holdSlice) for (const start = performance.now(); performance.now() - start <= SLICE_MS; );
      fire('handler');
    });
    let n = 0;
    const reached = new Set<Point>();
    for (const point of POINTS) {
      for (const [delay, hold] of DELAYS.flatMap((d) => [[d, false], [d, true]] as const)) {
        holdSlice = hold;
        const trigger = n++;
        const raced = n++;
        armed = { point, delay, n: raced };
        await other.publish(subject, pdu(trigger), { messageId: `m${trigger}` });
        await waitFor(() => handled.includes(trigger), `message ${trigger} handled`);
        // A point this path does not pass (the loop went to sleep without it) is disarmed once all is settled.
        await waitFor(async () => armed === undefined || (await bus.consumerStats(topology.consumers.stateResolverInbound(0))).pending + (await bus.consumerStats(topology.consumers.stateResolverInbound(0))).ackPending === 0, 'settled');
        for (let i = 0; i < 5 && armed; i++) await new Promise((resolve) => setImmediate(resolve));
        if (armed) {
          armed = undefined;
          n--;
          continue;
        }
        reached.add(point);
        // Not a speed check: a lost wake-up never ends, so this only stops the test with the case that hung.
        await waitFor(() => handled.includes(raced), `${point}/${delay}${hold ? ' after a held slice' : ''}: message ${raced}, published by ${publisher}, handled`, 5_000);
      }
    }
    await Promise.all(racing);
    expect(handled).toEqual([...Array(n).keys()]);
    return [...reached];
  }

  it('a publish in this process racing each point where a loop decides to sleep wakes it (no poll to rescue it)', async () => {
    expect(await race('this process', 3_600_000)).toEqual(['claimPublishedRun', 'settleRun', 'handler']);
  }, 60_000);

  it('a publish by another process racing each point where a loop decides to sleep is noticed by the watch for other processes’ commits', async () => {
    expect(await race('another process', 5)).toEqual(['claimRun', 'settleRun', 'handler']);
  }, 60_000);
});
