// A NATS cluster as operators run it, on loopback: three (or more) nats-server processes with JetStream,
// routed to each other, each with its own store. The server is a current release built from the Go module
// proxy (Debian's 2.9 is older than what clustered JetStream should run), cached under .cache/bin/.
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { findFreePort, goBuild, ManagedProcess, serviceUnavailable, waitForPort } from './process';

export const NATS_CLUSTER_SERVER_VERSION = 'v2.15.3';

function repoCacheBin(): string {
  let dir = __dirname;
  while (dir !== path.dirname(dir) && !existsSync(path.join(dir, 'nx.json'))) dir = path.dirname(dir);
  return path.join(dir, '.cache', 'bin');
}

/** The cached current nats-server, built from the Go module proxy when missing (a few minutes the first time). */
export function currentNatsServerBinary(): string {
  const out = path.join(repoCacheBin(), `nats-server-${NATS_CLUSTER_SERVER_VERSION}`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  if (!goBuild('github.com/nats-io/nats-server/v2', NATS_CLUSTER_SERVER_VERSION, tmp) || !existsSync(tmp)) {
    throw serviceUnavailable('nats cluster', [`go build of nats-server ${NATS_CLUSTER_SERVER_VERSION} failed or go missing`]);
  }
  rmSync(out, { force: true });
  renameSync(tmp, out);
  return out;
}

interface ClusterNode {
  name: string;
  port: number;
  routePort: number;
  storeDir: string;
  process: ManagedProcess;
}

export class LocalNatsCluster {
  private constructor(
    private readonly nodes: ClusterNode[],
    private readonly root: string,
  ) {}

  /** Every node's client URL, comma-separated (the form `nats.url` takes for a cluster). */
  get url(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(',');
  }

  get size(): number {
    return this.nodes.length;
  }

  static async start(size = 3, binary = currentNatsServerBinary()): Promise<LocalNatsCluster> {
    const root = mkdtempSync(path.join(tmpdir(), 'fedgate-nats-cluster-'));
    const ports = await Promise.all(Array.from({ length: size * 2 }, () => findFreePort()));
    const nodes: ClusterNode[] = Array.from({ length: size }, (_, i) => ({ name: `n${i + 1}`, port: ports[2 * i]!, routePort: ports[2 * i + 1]!, storeDir: path.join(root, `n${i + 1}`), process: undefined as never }));
    const routes = nodes.map((n) => `nats-route://127.0.0.1:${n.routePort}`).join(',');
    for (const node of nodes) {
      node.process = new ManagedProcess({
        command: binary,
        args: ['-js', '-sd', node.storeDir, '-n', node.name, '-a', '127.0.0.1', '-p', String(node.port), '--cluster_name', 'fedgate-test', '--cluster', `nats://127.0.0.1:${node.routePort}`, '--routes', routes],
        logFile: path.join(root, `${node.name}.log`),
      });
    }
    const cluster = new LocalNatsCluster(nodes, root);
    try {
      const started = await Promise.allSettled(nodes.map((_, i) => cluster.startNode(i)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await cluster.waitForJetStream();
    } catch (error) {
      // The caller never gets the cluster to stop: the nodes that did start would outlive the run.
      await cluster.stop().catch(() => undefined);
      throw error;
    }
    return cluster;
  }

  /**
   * Until JetStream answers (the cluster elected its meta leader): the nodes listen before that, and a gateway
   * started on a machine under load timed out asking for its account info.
   */
  private async waitForJetStream(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({ servers: this.url.split(','), timeout: 2_000 });
        await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`JetStream of the NATS cluster did not answer within ${timeoutMs} ms: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      } finally {
        await nc?.close();
      }
    }
  }

  async startNode(index: number): Promise<void> {
    const node = this.nodes[index]!;
    await waitForPort('127.0.0.1', node.port, 30_000, node.process.start());
  }

  /** kill -9 of one node (its store stays for startNode). */
  async killNode(index: number): Promise<void> {
    await this.nodes[index]!.process.stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.process.stop()));
    rmSync(this.root, { recursive: true, force: true });
  }
}
