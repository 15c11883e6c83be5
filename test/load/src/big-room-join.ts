// A target joins a room the simulator hosts with many members: make_join, then send_join. The simulator serves
// partial-state joins (omit_members): a target that asks for one has a usable room when /join answers and
// fetches the members afterwards (/state_ids, /state); one that does not gets every member's join in the
// send_join answer. Measured: /join answered (usable), every member seen joined (full state), peak RSS.
import type { TestCertificateAuthority } from '@fedgate/testing';
import { PeakRssWatcher, sampleProcesses } from './process-meter';
import { SimulatedHomeserver } from './simulated-homeserver';
import { newTraceParent, type CollectedSpan, type SpanCollector } from './span-collector';
import type { Target } from './targets';

export interface BigRoomJoinResult {
  members: number;
  /** Whether the simulator served the join with omit_members (partial state) when asked. */
  partial: boolean;
  /** The client's /join call, from request to answer: the room is usable. */
  joinMs?: number;
  /** From the /join request until `/joined_members` lists every member: the full state is in. */
  fullStateMs?: number;
  error?: string;
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS of the target's processes from the /join request until the full state is in. */
  peakRssBytes?: number;
  /** `--trace`: the /join request's spans in the target (and the background resync it started). */
  spans?: CollectedSpan[];
}

const POLL_MS = 500;

/** `partial: false`: the simulator ignores omit_members, so every target gets the whole state in send_join. */
export async function joinBigRoom(
  target: Target,
  ca: TestCertificateAuthority,
  members: number,
  options: { partial: boolean; timeoutMs?: number; collector?: SpanCollector },
): Promise<BigRoomJoinResult> {
  const { partial, timeoutMs = 600_000, collector } = options;
  const trace = collector && target.traced ? newTraceParent() : undefined;
  const sim = await SimulatedHomeserver.start(ca);
  try {
    const evil = sim.wire.evil;
    evil.servesPartialState = partial;
    const room = evil.createRoom('10');
    evil.append(room, { type: 'm.room.name', state_key: '', sender: evil.user('boss'), content: { name: `${members} members` } });
    for (let i = 0; i < members; i++) {
      const userId = evil.user(`member${i}`);
      evil.append(room, { type: 'm.room.member', sender: userId, state_key: userId, content: { membership: 'join' } });
    }
    const everyone = members + 2; // the members, the room's creator, and the target's user
    const cpuBefore = sampleProcesses(target.pids()).cpuSeconds;
    const peak = new PeakRssWatcher(() => target.pids());
    const started = Date.now();
    const deadline = started + timeoutMs;
    let joinMs: number | undefined;
    let fullStateMs: number | undefined;
    let error: string | undefined;
    try {
      await Promise.race([target.joinRemoteRoom(room.roomId, sim.name, trace?.traceparent), new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref())]);
      joinMs = Date.now() - started;
      while (Date.now() < deadline) {
        if ((await target.joinedMemberCount(room.roomId)) >= everyone) {
          fullStateMs = Date.now() - started;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      if (fullStateMs === undefined) error = `full state not in within ${timeoutMs} ms`;
    } catch (err) {
      error = (err as Error).message;
    }
    const peakRssBytes = peak.stop();
    const after = sampleProcesses(target.pids());
    const spans = trace && collector ? await collector.waitForRoot(trace.traceId, trace.callerSpanId) : undefined;
    return { members, partial, joinMs, fullStateMs, error, cpuSeconds: after.cpuSeconds - cpuBefore, rssBytes: after.rssBytes, peakRssBytes, spans };
  } finally {
    await sim.stop();
  }
}
