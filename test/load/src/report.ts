// The load run's report: one table per run, every target side by side, and the fedgate/Synapse ratio.
import { cpus, totalmem } from 'node:os';
import type { BigRoomJoinResult } from './big-room-join';
import type { FanOutResult } from './fan-out';
import type { GeneratorUse } from './generator-meter';
import type { WorkloadResult } from './workloads';

export interface TargetReport {
  target: string;
  version: string;
  idleRssBytes: number;
  /** CPU ms a second of the target's processes, idle (measured for `--parts interleaved` only). */
  idleCpuMsPerSecond?: number;
  results: WorkloadResult[];
  fanOut?: FanOutResult;
  /** The simulator serves partial-state joins (omit_members) to whoever asks. */
  bigJoin?: BigRoomJoinResult;
  /** The same join with the simulator ignoring omit_members: the whole state in send_join. */
  bigJoinWholeState?: BigRoomJoinResult;
}

export interface LoadReport {
  date: string;
  machine: string;
  scale: string;
  targets: TargetReport[];
}

export function machineDescription(): string {
  const cores = cpus();
  return `${cores.length} × ${cores[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const ms = (value?: number): string => (value === undefined ? '–' : `${value.toFixed(0)} ms`);
const num = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

interface Row {
  measure: string;
  text: (t: TargetReport) => string;
  /** The figure the fedgate/Synapse ratio is taken of; none for rows where a ratio says nothing. */
  value?: (t: TargetReport) => number | undefined;
}

function rowsFor(report: LoadReport): Row[] {
  const names = report.targets[0]?.results.map((r) => r.workload) ?? [];
  const rows: Row[] = [{ measure: 'idle RSS', text: (t) => mib(t.idleRssBytes), value: (t) => t.idleRssBytes }];
  if (report.targets.some((t) => t.idleCpuMsPerSecond !== undefined))
    rows.push({ measure: 'idle CPU (ms a second, the target\'s processes)', text: (t) => num(t.idleCpuMsPerSecond ?? Number.NaN), value: (t) => t.idleCpuMsPerSecond });
  names.forEach((name, i) => {
    const at = (t: TargetReport) => t.results[i];
    const show = (f: (r: WorkloadResult) => string) => (t: TargetReport) => (at(t) ? f(at(t)!) : '–');
    rows.push(
      { measure: `${name}: PDUs/s accepted (/send answered)`, text: show((r) => num(r.acceptedPerSecond)), value: (t) => at(t)?.acceptedPerSecond },
      { measure: `${name}: PDUs/s delivered (pushed to the AS)`, text: show((r) => num(r.deliveredPerSecond)), value: (t) => at(t)?.deliveredPerSecond },
      { measure: `${name}: /send p50 / p99`, text: show((r) => `${ms(r.sendMs.p50)} / ${ms(r.sendMs.p99)}`), value: (t) => at(t)?.sendMs.p99 },
      { measure: `${name}: sent → pushed to the AS p50 / p99`, text: show((r) => `${ms(r.deliveryMs.p50)} / ${ms(r.deliveryMs.p99)}`), value: (t) => at(t)?.deliveryMs.p99 },
      { measure: `${name}: CPU s per 1,000 PDUs delivered`, text: show((r) => num(r.cpuSecondsPer1000, 2)), value: (t) => at(t)?.cpuSecondsPer1000 },
      ...(report.targets.some((t) => t.results[i]?.backingCpuSecondsPer1000 !== undefined)
        ? [{ measure: `${name}: CPU s per 1,000 PDUs delivered, NATS and the MongoDB-wire server`, text: show((r) => num(r.backingCpuSecondsPer1000 ?? Number.NaN, 2)), value: (t: TargetReport) => at(t)?.backingCpuSecondsPer1000 }]
        : []),
      { measure: `${name}: peak RSS`, text: show((r) => mib(r.peakRssBytes)), value: (t) => at(t)?.peakRssBytes },
      { measure: `${name}: events lost`, text: show((r) => `${r.lost} of ${r.sent}`) },
      { measure: `${name}: federation /version p99 meanwhile`, text: show((r) => ms(r.versionMs.p99)), value: (t) => at(t)?.versionMs.p99 },
      { measure: `${name}: gateway event-loop delay p99 / max meanwhile`, text: show((r) => (r.eventLoopDelayMs ? `${ms(r.eventLoopDelayMs.p99Ms)} / ${ms(r.eventLoopDelayMs.maxMs)}` : '–')) },
    );
  });
  const servers = report.targets[0]?.fanOut?.servers;
  if (servers !== undefined) {
    const f = (t: TargetReport) => t.fanOut;
    rows.push(
      { measure: `building a room of ${servers} servers (${report.targets[0]!.fanOut!.build === 'relay' ? 'joins relayed by one server' : `make_join/send_join, ${report.targets[0]!.fanOut!.joinConcurrency} in flight, partial state`}): total s (the generator's CPU s)`, text: (t) => (f(t) ? `${num(f(t)!.joinSeconds)} s (${num(f(t)!.generatorCpuSeconds)})${f(t)!.joinRetries ? ` (${f(t)!.joinRetries} joins retried)` : ''}` : '–'), value: (t) => f(t)?.joinSeconds },
      { measure: `the last join, alone into the full room, whole state: make_join + send_join`, text: (t) => (f(t) ? `${ms(f(t)!.lastJoinMs)} (${ms(f(t)!.lastMakeJoinMs)} + ${ms(f(t)!.lastSendJoinMs)})` : '–'), value: (t) => f(t)?.lastJoinMs },
      { measure: `one local message to ${servers} servers, every connection closed and every TLS session forgotten first (a full handshake each): first received / all received`, text: (t) => (f(t)?.firstContact ? `${ms(f(t)!.firstContact.firstDeliveryMs)} / ${ms(f(t)!.firstContact.allDeliveredMs)} (${f(t)!.firstContact.received} of ${servers})` : '–'), value: (t) => f(t)?.firstContact?.allDeliveredMs },
      { measure: `one local message to ${servers} servers, every connection closed first (a TLS handshake each, resumed): send answered / first received / all received`, text: (t) => (f(t) ? `${ms(f(t)!.sendMs)} / ${ms(f(t)!.firstDeliveryMs)} / ${ms(f(t)!.allDeliveredMs)} (${f(t)!.received} of ${servers})` : '–'), value: (t) => f(t)?.allDeliveredMs },
      { measure: `the next message at once: its transactions built by the target (origin_server_ts), first / last; the cold one's`, text: (t) => (f(t) ? `${ms(f(t)!.warm.firstBuiltMs)} / ${ms(f(t)!.warm.lastBuiltMs)}; ${ms(f(t)!.firstBuiltMs)} / ${ms(f(t)!.lastBuiltMs)}` : '–'), value: (t) => f(t)?.warm.lastBuiltMs },
      { measure: `the next message at once (connections open): first received / all received`, text: (t) => (f(t) ? `${ms(f(t)!.warm.firstDeliveryMs)} / ${ms(f(t)!.warm.allDeliveredMs)} (${f(t)!.warm.received} of ${servers})` : '–'), value: (t) => f(t)?.warm.allDeliveredMs },
      {
        measure: `the generator during those three messages (first contact / resumed / open): its CPU s, its main thread busy (in its busiest 100 ms)${report.targets[0]!.fanOut!.generatorThreads ? `; the servers in ${report.targets[0]!.fanOut!.generatorThreads} worker threads` : '; the servers on its main thread'}`,
        text: (t) => {
          const use = (d?: { generator?: GeneratorUse }) => (d?.generator ? `${num(d.generator.cpuSeconds, 2)} s, ${Math.round(d.generator.mainThreadBusy * 100)}% (${Math.round(d.generator.mainThreadBusiest100Ms * 100)}%)${d.generator.busiestWorkerThread !== undefined ? `, busiest server thread ${Math.round(d.generator.busiestWorkerThread * 100)}%` : ''}` : '–');
          return f(t) ? `${use(f(t)!.firstContact)} / ${use(f(t))} / ${use(f(t)!.warm)}` : '–';
        },
      },
      { measure: `federation /version p99 while the room was built / during the three messages`, text: (t) => (f(t)?.versionDuringJoinsMs ? `${ms(f(t)!.versionDuringJoinsMs.p99)} / ${ms(f(t)!.versionDuringMessagesMs.p99)}` : '–'), value: (t) => f(t)?.versionDuringMessagesMs?.p99 },
      { measure: `the gateway's event-loop delay p99 / max while the room was built; during the three messages`, text: (t) => (f(t)?.eventLoopDuringJoinsMs || f(t)?.eventLoopDuringMessagesMs ? `${ms(f(t)!.eventLoopDuringJoinsMs?.p99Ms)} / ${ms(f(t)!.eventLoopDuringJoinsMs?.maxMs)}; ${ms(f(t)!.eventLoopDuringMessagesMs?.p99Ms)} / ${ms(f(t)!.eventLoopDuringMessagesMs?.maxMs)}` : '–'), value: (t) => f(t)?.eventLoopDuringMessagesMs?.p99Ms },
      { measure: `RSS with ${servers} servers joined: idle after the joins / after the two messages`, text: (t) => (f(t) ? `${mib(f(t)!.rssJoinedBytes)} / ${mib(f(t)!.rssBytes)}` : '–'), value: (t) => f(t)?.rssBytes },
      { measure: `RSS once the target closed its idle connections to the ${servers} (\`egress.idleConnectionTimeoutMs\`), closed after`, text: (t) => (f(t)?.rssConnectionsClosedBytes !== undefined ? `${mib(f(t)!.rssConnectionsClosedBytes!)}, ${num(f(t)!.connectionsClosedAfterMs! / 1000)} s` : '–'), value: (t) => f(t)?.rssConnectionsClosedBytes },
    );
  }
  for (const [field, how] of [
    ['bigJoin', 'served with omit_members (partial state)'],
    ['bigJoinWholeState', 'whole state in send_join'],
  ] as const) {
    const members = report.targets[0]?.[field]?.members;
    if (members === undefined) continue;
    const j = (t: TargetReport) => t[field];
    rows.push(
      {
        measure: `joining a ${members}-member room the simulator hosts, ${how}: /join answered (room usable)`,
        text: (t) => (j(t) ? (j(t)!.joinMs !== undefined ? ms(j(t)!.joinMs) : `failed: ${j(t)!.error ?? ''}`) : '–'),
        value: (t) => j(t)?.joinMs,
      },
      {
        measure: `joining a ${members}-member room, ${how}: every member seen joined (full state)`,
        text: (t) => (j(t) ? (j(t)!.fullStateMs !== undefined ? ms(j(t)!.fullStateMs) : `not reached: ${j(t)!.error ?? ''}`) : '–'),
        value: (t) => j(t)?.fullStateMs,
      },
      { measure: `joining a ${members}-member room, ${how}: peak RSS`, text: (t) => (j(t)?.peakRssBytes !== undefined ? mib(j(t)!.peakRssBytes!) : '–'), value: (t) => j(t)?.peakRssBytes },
    );
  }
  return rows;
}

/** The side-by-side table; a ratio column when both a fedgate and Synapse ran. */
export function markdownTable(report: LoadReport): string {
  const fedgate = report.targets.find((t) => t.target.startsWith('fedgate'));
  const synapse = report.targets.find((t) => t.target === 'synapse');
  const ratio = fedgate && synapse;
  const header = ['measure', ...report.targets.map((t) => t.version), ...(ratio ? ['fedgate/Synapse'] : [])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rowsFor(report)) {
    const cells = report.targets.map((t) => row.text(t));
    if (ratio) {
      const a = row.value?.(fedgate);
      const b = row.value?.(synapse);
      cells.push(a !== undefined && b !== undefined && b > 0 && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : '–');
    }
    lines.push(`| ${row.measure} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function markdownReport(report: LoadReport): string {
  return [
    `Run ${report.date} on ${report.machine}; scale \`${report.scale}\` (\`npm run loadtest -- --scale ${report.scale}\`).`,
    '',
    markdownTable(report),
  ].join('\n');
}
