// The test-harness leak (review5), NATS cluster side: when one node of a cluster fails to start, the nodes that did
// start were left running (the error left LocalNatsCluster.start before the caller held the cluster to stop it).
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalNatsCluster } from './nats-cluster';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('LocalNatsCluster.start (test harness leak)', () => {
  it('stops the nodes that started when another node fails to start', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fake-nats-'));
    // A stand-in nats-server: node n2 exits at once; the others listen on their -p port and note their pid.
    const fake = path.join(dir, 'fake-nats-server');
    writeFileSync(
      fake,
      `#!${process.execPath}
const args = process.argv.slice(2);
const name = args[args.indexOf('-n') + 1];
if (name === 'n2') process.exit(3);
require('node:fs').writeFileSync(${JSON.stringify(dir)} + '/' + name + '.pid', String(process.pid));
require('node:net').createServer().listen(Number(args[args.indexOf('-p') + 1]), '127.0.0.1');
`,
    );
    chmodSync(fake, 0o755);
    try {
      await expect(LocalNatsCluster.start(3, fake)).rejects.toThrow(/exited/);
      const pids = readdirSync(dir)
        .filter((f) => f.endsWith('.pid'))
        .map((f) => Number(readFileSync(path.join(dir, f), 'utf8')));
      expect(pids.length).toBeGreaterThan(0);
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
