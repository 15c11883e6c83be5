// A MongoDB-wire database for the medium and e2e suites and the benches. Order of preference:
//   1. FEDGATE_TEST_MONGO_URL from the environment (a running database; nothing is started);
//   2. a `mongo` container through testcontainers, when a container runtime answers quickly;
//   3. a local FerretDB v1 process on its SQLite backend, built from source with Go when missing
//      and cached under .cache/bin/ so later runs on the machine reuse it.
// Failing all three throws: a test run never silently goes without its database.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { containerRuntimeAnswers, findFreePort, ManagedProcess, serviceUnavailable, waitForPort, type RunningService } from './process';

export type { RunningService } from './process';

const FERRETDB_VERSION = 'v1.24.2';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
const MONGO_IMAGE = 'mongo:7';

const run = promisify(execFile);

interface SharedMongo {
  url: string;
  stop?: () => Promise<void>;
}

// globalThis, because jest loads global-setup and global-teardown as separate module instances.
const state = globalThis as { __fedgateSharedMongo?: SharedMongo };

export async function startMongo(): Promise<RunningService> {
  if (state.__fedgateSharedMongo) return { url: state.__fedgateSharedMongo.url };
  const given = process.env.FEDGATE_TEST_MONGO_URL;
  if (given) {
    state.__fedgateSharedMongo = { url: given };
    return { url: given };
  }
  const reasons: string[] = [];
  if (containerRuntimeAnswers()) {
    try {
      state.__fedgateSharedMongo = await startMongoContainer();
      return { url: state.__fedgateSharedMongo.url };
    } catch (err) {
      reasons.push(`testcontainers: ${(err as Error).message}`);
    }
  } else {
    reasons.push('no container engine answered');
  }
  try {
    state.__fedgateSharedMongo = await startFerretDb();
    return { url: state.__fedgateSharedMongo.url };
  } catch (err) {
    reasons.push(`FerretDB: ${(err as Error).message}`);
  }
  throw serviceUnavailable('mongo', reasons);
}

export async function stopMongo(): Promise<void> {
  const shared = state.__fedgateSharedMongo;
  state.__fedgateSharedMongo = undefined;
  await shared?.stop?.();
}

/** Resolves true once a MongoDB-wire server at `url` answers a ping. */
export async function pingMongo(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function startMongoContainer(): Promise<SharedMongo> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(MONGO_IMAGE)
    .withExposedPorts(27017)
    .withWaitStrategy(Wait.forLogMessage(/Waiting for connections/))
    .start();
  const url = `mongodb://${container.getHost()}:${container.getMappedPort(27017)}/?directConnection=true`;
  return { url, stop: async () => void (await container.stop()) };
}

function ferretDbProcess(binary: string, dataDir: string, port: number): ManagedProcess {
  return new ManagedProcess({
    command: binary,
    args: [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      `--state-dir=${dataDir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=warn',
    ],
    logFile: path.join(dataDir, 'ferretdb.log'),
  });
}

/** A FerretDB of a test's own (fixed port and data), so the test can take the store away and bring it back. */
export class LocalFerretDb {
  private constructor(
    private readonly service: ManagedProcess,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/?directConnection=true`;
  }

  static async start(): Promise<LocalFerretDb> {
    const binary = await ferretDbBinary();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fedgate-ferretdb-'));
    const port = await findFreePort();
    const db = new LocalFerretDb(ferretDbProcess(binary, dataDir, port), port, dataDir);
    await db.up();
    return db;
  }

  /** Stops the server (SIGKILL when `crash`), keeping port and data for `up()`: a store outage. */
  async down(crash = false): Promise<void> {
    await this.service.stop(crash ? 'SIGKILL' : 'SIGTERM');
  }

  async up(): Promise<void> {
    await waitForPort('127.0.0.1', this.port, 30_000, this.service.start());
    if (!(await pingMongo(this.url, 5000))) throw new Error(`FerretDB listens on ${this.port} but does not answer a ping`);
  }

  async stop(): Promise<void> {
    await this.service.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

async function startFerretDb(): Promise<SharedMongo> {
  const binary = await ferretDbBinary();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fedgate-ferretdb-'));
  const port = await findFreePort();
  const service = ferretDbProcess(binary, dataDir, port);
  const stop = async () => {
    await service.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const url = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  try {
    await waitForPort('127.0.0.1', port, 30_000, service.start());
    if (!(await pingMongo(url, 5000))) throw new Error(`FerretDB listens on ${port} but does not answer a ping`);
  } catch (err) {
    const log = await readFile(path.join(dataDir, 'ferretdb.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}\n${log.slice(-4000)}`);
  }
  return { url, stop };
}

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'nx.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (nx.json) above ' + __dirname);
    dir = parent;
  }
  return dir;
}

/** The cached FerretDB binary, built when missing. */
async function ferretDbBinary(): Promise<string> {
  const cacheDir = path.join(repoRoot(), '.cache', 'bin');
  const binary = path.join(cacheDir, `ferretdb-${FERRETDB_VERSION}`);
  if (existsSync(binary)) return binary;
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(os.tmpdir(), 'fedgate-ferretdb-build-'));
  try {
    await buildFerretDb(work, `${binary}.${process.pid}.tmp`);
    await rename(`${binary}.${process.pid}.tmp`, binary);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return binary;
}

// `go install module@version` needs the proxy's version-list endpoint, which some networks refuse;
// `go get` of the exact version does not. The module's build/version/version.txt is empty outside
// FerretDB's own release process and the binary panics at start without it, so the module source is
// copied next to a throwaway main module, the version file written, and the copy used via `replace`.
async function buildFerretDb(work: string, output: string): Promise<void> {
  const go = async (...args: string[]) => {
    try {
      return (await run('go', args, { cwd: work, timeout: 10 * 60_000, maxBuffer: 16 * 2 ** 20 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`go ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  };
  await go('mod', 'init', 'fedgate.test/ferretdb');
  await go('get', `${FERRETDB_MODULE}/cmd/ferretdb@${FERRETDB_VERSION}`);
  const moduleDir = (await go('list', '-m', '-f', '{{.Dir}}', FERRETDB_MODULE)).trim();
  const source = path.join(work, 'ferretdb-src');
  await cp(moduleDir, source, { recursive: true });
  await makeWritable(source);
  await writeFile(path.join(source, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
  await go('mod', 'edit', `-replace=${FERRETDB_MODULE}=./ferretdb-src`);
  await go('build', '-o', output, `${FERRETDB_MODULE}/cmd/ferretdb`);
}

async function makeWritable(dir: string): Promise<void> {
  // The module cache is read-only; its copy keeps the modes, and rm of the work dir needs write.
  await run('chmod', ['-R', 'u+w', dir]);
}
