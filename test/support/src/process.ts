// Shared helpers for the test-service starters (nats.ts, mongo.ts): finding and installing binaries,
// free ports, child processes with a log file, waiting until a service listens, and the error a
// starter throws when it cannot provide its service. Keep them small and additive.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface RunningService {
  url: string;
}

/** The error a starter throws when it cannot provide its service; never a silent skip. */
export function serviceUnavailable(service: string, reasons: string[]): Error {
  const inCi = process.env.CI === 'true' ? ' (CI)' : '';
  const envName = `FEDGATE_TEST_${service.toUpperCase()}_URL`;
  return new Error(`${service}: no test service could be started${inCi}; set ${envName} to use a running one.\n- ${reasons.join('\n- ')}`);
}

/** True when a container engine answers within `timeoutMs` (the docker CLI may exist without one). */
export function containerRuntimeAnswers(timeoutMs = 3000): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: timeoutMs, stdio: 'ignore' });
  return r.status === 0;
}

/** An executable called `name` in `extraDirs` or on PATH. */
export function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...extraDirs, ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** apt-get install, only when running as root; true when it succeeded. */
export function aptInstall(pkg: string): boolean {
  if (process.getuid?.() !== 0 || !findBinary('apt-get')) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  return spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: 'ignore', env, timeout: 5 * 60_000 }).status === 0;
}

/**
 * Builds the main package `pkg` of a Go module at `version` into `out`. Uses `go get` of the exact
 * version in a throwaway module, because `go install pkg@version` needs the proxy's version-list
 * endpoint, which some networks refuse.
 */
export function goBuild(pkg: string, version: string, out: string, modulePath = pkg): boolean {
  if (!findBinary('go')) return false;
  const work = mkdtempSync(path.join(tmpdir(), 'fedgate-go-build-'));
  const go = (...args: string[]) => spawnSync('go', args, { cwd: work, stdio: 'ignore', timeout: 10 * 60_000 }).status === 0;
  try {
    mkdirSync(path.dirname(out), { recursive: true });
    return go('mod', 'init', 'fedgate.test/build') && go('get', `${modulePath}@${version}`) && go('build', '-o', out, pkg);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A TCP port on loopback that nothing listens on right now. */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects if `child` exits first or time runs out. */
export async function waitForPort(host: string, port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const connects = () =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before listening on ${host}:${port}`);
    if (await connects()) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ManagedProcessOptions {
  command: string;
  args: string[];
  /** stdout and stderr are appended here. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

/** A service process that can be started, stopped and started again; killed if this process exits. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  constructor(private readonly options: ManagedProcessOptions) {}

  start(): ChildProcess {
    const log = createWriteStream(this.options.logFile, { flags: 'a' });
    const child = spawn(this.options.command, this.options.args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.options.env ?? process.env });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on('error', (err) => log.write(`spawn error: ${err.message}\n`));
    this.child = child;
    process.once('exit', this.killOnExit);
    return child;
  }

  /** Sends a signal without waiting (SIGSTOP / SIGCONT: a server that is there but does not answer). */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    process.off('exit', this.killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
