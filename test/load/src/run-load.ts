// One target through every workload: start it, measure it idle, run the workloads, stop it.
import type { TestCertificateAuthority } from '@fedgate/testing';
import { joinBigRoom } from './big-room-join';
import { fanOut } from './fan-out';
import { cpuMsPerSecond, sampleProcesses } from './process-meter';
import type { TargetReport } from './report';
import { SimulatedHomeserver } from './simulated-homeserver';
import { timeline, type SpanCollector } from './span-collector';
import { startTarget, type TargetKind, type TargetOptions } from './targets';
import { fixedRate, interleavedRooms, workloads, type Scale } from './workloads';

/**
 * `inbound` runs every inbound workload and the steady load; `interleaved` only the rooms interleaved (replicas
 * compared), with the idle CPU measured first; `idle` only that.
 */
export type Part = 'inbound' | 'interleaved' | 'idle' | 'fan-out' | 'big-join';

export async function runLoad(
  kind: TargetKind,
  ca: TestCertificateAuthority,
  scale: Scale,
  log: (line: string) => void = () => undefined,
  parts: readonly Part[] = ['inbound', 'fan-out', 'big-join'],
  options: TargetOptions & { collector?: SpanCollector } = {},
): Promise<TargetReport> {
  const target = await startTarget(kind, ca, { otlpEndpoint: options.collector?.endpoint });
  const sim = await SimulatedHomeserver.start(ca);
  try {
    // Idle: started, one room created, nothing sent yet; a moment for start-up work to finish.
    await target.createRoom();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const idleRssBytes = sampleProcesses(target.pids()).rssBytes;
    // Replicas compared: what the processes burn doing nothing (pull renewals, heartbeats, lease renewals).
    const idleCpuMsPerSecond = parts.includes('interleaved') || parts.includes('idle') ? await cpuMsPerSecond(target.pids(), 10_000) : undefined;
    const results = [];
    const inbound = parts.includes('inbound') ? workloads : parts.includes('interleaved') ? [interleavedRooms] : [];
    for (const workload of inbound) {
      const result = await workload(sim, target, scale);
      log(`${result.workload}: ${result.delivered}/${result.sent} delivered, ${result.deliveredPerSecond.toFixed(1)} PDUs/s, lost ${result.lost}${result.errors.length ? `, errors: ${result.errors.join('; ')}` : ''}`);
      results.push(result);
    }
    if (parts.includes('inbound')) {
      // Half of the best delivered rate this target reached: a steady load it can carry.
      const rate = Math.max(1, Math.max(...results.map((r) => r.deliveredPerSecond)) / 2);
      const steady = await fixedRate(sim, target, scale, rate);
      log(`${steady.workload}: sent → pushed p99 ${steady.deliveryMs.p99 ?? '–'} ms, lost ${steady.lost}`);
      results.push(steady);
    }
    const fanOutResult = parts.includes('fan-out') ? await fanOut(target, ca, scale.fanOutServers, scale.joinConcurrency, target.kind === 'synapse' ? undefined : scale.heapSnapshotDir, log, scale.fanOutBuild, undefined, scale.fanOutIdleCloseWaitMs, scale.fanOutThreads) : undefined;
    if (fanOutResult) log(`fan-out to ${fanOutResult.servers}: ${JSON.stringify(fanOutResult)}`);
    const bigJoins = [];
    for (const partial of parts.includes('big-join') ? [true, false] : []) {
      const bigJoin = await joinBigRoom(target, ca, scale.bigRoomMembers, { partial, collector: options.collector });
      log(`${partial ? 'partial-state' : 'whole-state'} join of a ${bigJoin.members}-member room: usable ${bigJoin.joinMs ?? '–'} ms, full state ${bigJoin.fullStateMs ?? '–'} ms${bigJoin.error ? ` (${bigJoin.error})` : ''}`);
      if (bigJoin.spans) for (const line of timeline(bigJoin.spans)) log(`  ${line}`);
      bigJoins.push(bigJoin);
    }
    return { target: kind, version: target.version, idleRssBytes, ...(idleCpuMsPerSecond !== undefined ? { idleCpuMsPerSecond } : {}), results, fanOut: fanOutResult, bigJoin: bigJoins[0], bigJoinWholeState: bigJoins[1] };
  } finally {
    await sim.stop();
    await target.stop();
  }
}
