// CPU time and memory of a target's processes, read from /proc (Linux): what a load run costs the target,
// not the load generator.
import { readdirSync, readFileSync } from 'node:fs';

const ticksPerSecond = 100; // USER_HZ on Linux

export interface ProcessSample {
  cpuSeconds: number;
  rssBytes: number;
}

export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuSeconds, rssBytes: rssKiB * 1024 };
}

/** Sums over several processes (the distributed shape); a process gone between reads counts zero. */
export function sampleProcesses(pids: readonly number[]): ProcessSample {
  const total = { cpuSeconds: 0, rssBytes: 0 };
  for (const pid of pids) {
    try {
      const s = sampleProcess(pid);
      total.cpuSeconds += s.cpuSeconds;
      total.rssBytes += s.rssBytes;
    } catch {
      // exited
    }
  }
  return total;
}

/** Child processes of this one whose command line contains one of `needles` (NATS and the MongoDB-wire server this run started). */
export function childProcessesMatching(needles: readonly string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== process.pid) continue;
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (needles.some((needle) => commandLine.includes(needle))) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/** CPU milliseconds a second the processes spend over `ms` (idle cost: polling, lease renewals). */
export async function cpuMsPerSecond(pids: readonly number[], ms: number): Promise<number> {
  const before = sampleProcesses(pids).cpuSeconds;
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ((sampleProcesses(pids).cpuSeconds - before) * 1000) / ((Date.now() - started) / 1000);
}

/** The process whose command line contains `needle` (Synapse is started through a launcher that does not expose its PID). */
export function findProcessByCommandLine(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** Samples RSS every `intervalMs` and keeps the peak, until stopped. */
export class PeakRssWatcher {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pids: () => readonly number[], intervalMs = 100) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }
  private sample(): void {
    this.peak = Math.max(this.peak, sampleProcesses(this.pids()).rssBytes);
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}
