// A target joins a room the simulator hosts with many members: make_join, then send_join whose answer carries
// every member's join and the auth chain, all of which the target must check and store before its join is done.
import type { TestCertificateAuthority } from '@fedgate/testing';
import { sampleProcesses } from './process-meter';
import { SimulatedHomeserver } from './simulated-homeserver';
import type { Target } from './targets';

export interface BigRoomJoinResult {
  members: number;
  /** The client's /join call, from request to answer. */
  joinMs?: number;
  error?: string;
  cpuSeconds: number;
  rssBytes: number;
}

export async function joinBigRoom(target: Target, ca: TestCertificateAuthority, members: number, timeoutMs = 600_000): Promise<BigRoomJoinResult> {
  const sim = await SimulatedHomeserver.start(ca);
  try {
    const evil = sim.wire.evil;
    const room = evil.createRoom('10');
    for (let i = 0; i < members; i++) {
      const userId = evil.user(`member${i}`);
      evil.append(room, { type: 'm.room.member', sender: userId, state_key: userId, content: { membership: 'join' } });
    }
    const cpuBefore = sampleProcesses(target.pids()).cpuSeconds;
    const started = Date.now();
    let joinMs: number | undefined;
    let error: string | undefined;
    try {
      await Promise.race([
        target.joinRemoteRoom(room.roomId, sim.name),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
      ]);
      joinMs = Date.now() - started;
    } catch (err) {
      error = (err as Error).message;
    }
    const after = sampleProcesses(target.pids());
    return { members, joinMs, error, cpuSeconds: after.cpuSeconds - cpuBefore, rssBytes: after.rssBytes };
  } finally {
    await sim.stop();
  }
}
