// NATS JetStream for medium/e2e tests and benches. Order of preference: FEDGATE_TEST_NATS_URL,
// testcontainers when a container engine answers, then a local nats-server (installed when missing).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  aptInstall,
  containerRuntimeAnswers,
  findBinary,
  findFreePort,
  goBuild,
  ManagedProcess,
  serviceUnavailable,
  waitForPort,
  type RunningService,
} from './process';

export type { RunningService } from './process';

const NATS_SERVER_GO_VERSION = 'v2.10.29';
const NATS_IMAGE = 'nats:2.10-alpine';

function repoCacheBin(): string {
  let dir = __dirname;
  while (dir !== path.dirname(dir) && !existsSync(path.join(dir, 'nx.json'))) dir = path.dirname(dir);
  return path.join(dir, '.cache', 'bin');
}

/** Finds nats-server, installing it (apt, then a Go build) when missing. */
export function ensureNatsServerBinary(reasons: string[] = []): string | undefined {
  const cacheBin = repoCacheBin();
  let binary = findBinary('nats-server', [cacheBin]);
  if (binary) return binary;
  if (aptInstall('nats-server')) binary = findBinary('nats-server');
  else reasons.push('apt-get install nats-server failed or not root');
  if (binary) return binary;
  const out = path.join(cacheBin, 'nats-server');
  if (goBuild('github.com/nats-io/nats-server/v2', NATS_SERVER_GO_VERSION, out) && existsSync(out)) return out;
  reasons.push(`go build of nats-server ${NATS_SERVER_GO_VERSION} failed or go missing`);
  return undefined;
}

/** One local nats-server with JetStream on a fixed port and store dir, so it can be restarted in place. */
export class LocalNatsServer implements RunningService {
  readonly url: string;
  private readonly process: ManagedProcess;

  private constructor(
    binary: string,
    readonly port: number,
    readonly storeDir: string,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.process = new ManagedProcess({
      command: binary,
      args: ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)],
      logFile: path.join(storeDir, 'nats-server.log'),
    });
  }

  static async start(binary = ensureNatsServerBinary()): Promise<LocalNatsServer> {
    if (!binary) throw serviceUnavailable('nats', ['nats-server binary not found and could not be installed']);
    const storeDir = mkdtempSync(path.join(tmpdir(), 'fedgate-nats-'));
    const server = new LocalNatsServer(binary, await findFreePort(), storeDir);
    await server.boot();
    return server;
  }

  private async boot(): Promise<void> {
    const child = this.process.start();
    await waitForPort('127.0.0.1', this.port, 15_000, child);
  }

  /** Stops the server (SIGKILL when `crash`), keeping its port and store for `up()`: an outage. */
  async down(crash = false): Promise<void> {
    await this.process.stop(crash ? 'SIGKILL' : 'SIGTERM');
  }

  /** SIGSTOP: the server keeps its connections open but answers nothing (a network partition, a frozen node); `thaw()` ends it. */
  freeze(): void {
    this.process.signal('SIGSTOP');
  }

  thaw(): void {
    this.process.signal('SIGCONT');
  }

  /** Starts the server again after `down()`, on the same port and store. */
  async up(): Promise<void> {
    await this.boot();
  }

  /** Stops the server (SIGKILL when `crash`) and starts it again on the same port and store. */
  async restart(crash = false): Promise<void> {
    await this.process.stop(crash ? 'SIGKILL' : 'SIGTERM');
    await this.boot();
  }

  async stop(): Promise<void> {
    await this.process.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

interface SharedNats {
  url: string;
  local?: LocalNatsServer;
  container?: { stop(): Promise<unknown> };
}

// globalThis, because jest loads global-setup and global-teardown as separate module instances.
const state = globalThis as { __fedgateSharedNats?: SharedNats };

async function startContainer(): Promise<SharedNats> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(NATS_IMAGE)
    .withCommand(['-js'])
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
  return { url: `nats://${container.getHost()}:${container.getMappedPort(4222)}`, container };
}

/** Starts (or finds) the shared NATS server for this run. */
export async function startNats(): Promise<RunningService> {
  if (state.__fedgateSharedNats) return { url: state.__fedgateSharedNats.url };
  const fromEnv = process.env.FEDGATE_TEST_NATS_URL;
  if (fromEnv) {
    state.__fedgateSharedNats = { url: fromEnv };
    return { url: fromEnv };
  }
  const reasons: string[] = [];
  if (containerRuntimeAnswers()) {
    try {
      state.__fedgateSharedNats = await startContainer();
      return { url: state.__fedgateSharedNats.url };
    } catch (error) {
      reasons.push(`testcontainers: ${(error as Error).message}`);
    }
  } else {
    reasons.push('no container engine answered');
  }
  const binary = ensureNatsServerBinary(reasons);
  if (!binary) throw serviceUnavailable('nats', reasons);
  const local = await LocalNatsServer.start(binary);
  state.__fedgateSharedNats = { url: local.url, local };
  return { url: local.url };
}

/** Restarts the shared server in place (same port and store); only for a server this run started locally. */
export async function restartNats(crash = false): Promise<void> {
  const local = state.__fedgateSharedNats?.local;
  if (!local) throw new Error('restartNats: the shared NATS server was not started locally by this process');
  await local.restart(crash);
}

export async function stopNats(): Promise<void> {
  const shared = state.__fedgateSharedNats;
  state.__fedgateSharedNats = undefined;
  await shared?.local?.stop();
  await shared?.container?.stop();
}
