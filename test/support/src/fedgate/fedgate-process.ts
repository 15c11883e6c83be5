// One fedgate service process (the embedded gateway or one distributed service): started from the built
// dist/ tree with a config file, its output kept in memory and appended to a log file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';

export const repositoryRoot = path.resolve(__dirname, '..', '..', '..', '..');

/** Where `npm run build` puts an app's entry point. */
export function builtAppMain(app: string): string {
  return path.join(repositoryRoot, 'dist', 'apps', app, 'src', 'main.js');
}

export interface ReadyListeners {
  federationUrl?: string;
  clientServerUrl?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The process did not exit within the grace period and was killed. */
  killedAfterGrace: boolean;
  ms: number;
}

const READY = /fedgate (\S+) ready: ([^\n]*)/;

export class FedgateProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private log: WriteStream | undefined;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  constructor(
    /** `gateway`, `federation-ingress`, … (the app directory and the name in the ready line). */
    readonly app: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile: string,
  ) {}

  /** The OS process ID while running (the fuzzer and the load generator read its RSS and CPU time from /proc). */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process printed since it was created (across restarts). */
  logs(): string {
    return this.output;
  }

  /** Starts the process and resolves with the listeners its ready line names. */
  async start(timeoutMs = 60_000): Promise<ReadyListeners> {
    if (this.running) throw new Error(`${this.app} is running already`);
    const from = this.output.length;
    this.log ??= createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [builtAppMain(this.app)], { cwd: repositoryRoot, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    process.once('exit', this.killOnExit);
    const append = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.output += text;
      this.log?.write(text);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.slice(from).match(READY);
      if (match && match[1] === this.app) return parseListeners(match[2]!);
      if (!this.running) throw new Error(`${this.app} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${this.output.slice(from)}`);
      if (Date.now() > deadline) throw new Error(`${this.app} not ready after ${timeoutMs} ms:\n${this.output.slice(from)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends a signal without waiting (SIGSTOP / SIGCONT: a paused process). */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) throw new Error(`${this.app} is not running`);
    this.child!.kill(signal);
  }

  /**
   * SIGTERM (a clean shutdown) or SIGKILL (a crash); waits for the exit, killing the process after `graceMs`
   * as an orchestrator would. Says how it ended: `killedAfterGrace` when the process ignored the signal that long.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<ProcessExit | undefined> {
    const child = this.child;
    if (!child) return undefined;
    process.off('exit', this.killOnExit);
    let killedAfterGrace = false;
    const began = Date.now();
    if (this.running) {
      child.kill(signal);
      const timer = setTimeout(() => {
        killedAfterGrace = true;
        child.kill('SIGKILL');
      }, graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.child = undefined;
    return { code: child.exitCode, signal: child.signalCode, killedAfterGrace, ms: Date.now() - began };
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => (this.log ? this.log.end(() => resolve()) : resolve()));
    this.log = undefined;
  }
}

function parseListeners(line: string): ReadyListeners {
  return {
    federationUrl: line.match(/federation (https:\/\/\S+?)(?:,|$)/)?.[1],
    clientServerUrl: line.match(/client-server (http:\/\/\S+?)(?:,|$)/)?.[1],
  };
}
