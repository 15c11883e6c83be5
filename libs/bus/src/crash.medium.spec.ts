// Crash tests: a consumer process killed with SIGKILL mid-batch loses nothing, and its redeliveries
// are absorbed by the handler's idempotency; a NATS server killed and restarted loses nothing acked.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { LocalNatsServer } from '@fedgate/testing';
import type { Bus } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import { JetStreamBus } from './jetstream-bus';
import type { InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

jest.setTimeout(120_000);

const register = path.resolve(__dirname, '../../../test/support/src/swc-register.cjs');
const childScript = path.resolve(__dirname, 'contract/children/idempotent-consumer.child.ts');
const MESSAGES = 300;

function startConsumer(env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(childScript, [], { execPath: process.execPath, execArgv: ['-r', register], env: { ...process.env, ...env }, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`consumer exited early with ${code}`)));
  });
}

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

const pdu = (n: number): InboundPdu => ({ eventId: `$e${n}`, roomId: '!r:x', roomVersion: '10', origin: 'o', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

describe.each(['jetstream', 'embedded'] as const)('consumer killed mid-batch (%s)', (kind) => {
  it('applies every message exactly once in effect, though some are delivered twice', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-crash-'));
    const prefix = `crash${kind}${process.pid}`;
    const topology = busTopology({ prefix, roomPartitions: 1, ackWaitMs: 1000, maxDeliver: 20 });
    const env = {
      BUS_KIND: kind,
      BUS_PREFIX: prefix,
      BUS_FILE: path.join(dir, 'bus.sqlite'),
      EFFECTS_FILE: path.join(dir, 'effects.sqlite'),
      NATS_URL: process.env.FEDGATE_TEST_NATS_URL ?? '',
    };
    const effects = new DatabaseSync(env.EFFECTS_FILE);
    effects.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000;');
    effects.exec('CREATE TABLE IF NOT EXISTS effects (message_id TEXT PRIMARY KEY); CREATE TABLE IF NOT EXISTS attempts (message_id TEXT, delivery INTEGER);');
    const count = (sql: string) => Number((effects.prepare(sql).get() as { n: number }).n);
    const options = busOptionsFor(topology);
    const bus: Bus = kind === 'jetstream' ? await JetStreamBus.connect({ servers: env.NATS_URL }, options) : new EmbeddedBus({ ...options, path: env.BUS_FILE });
    let child: ChildProcess | undefined;
    try {
      await bus.start();
      for (let n = 0; n < MESSAGES; n++) await bus.publish(topology.inboundPdu.partition(0), pdu(n), { messageId: `$e${n}` });

      child = await startConsumer(env);
      await waitFor(() => count('SELECT COUNT(*) AS n FROM effects') >= MESSAGES / 3, 'a third of the effects');
      await kill(child);
      const effectsAtKill = count('SELECT COUNT(*) AS n FROM effects');

      child = await startConsumer(env);
      const consumer = topology.consumers.stateResolverInbound(0);
      await waitFor(async () => {
        const stats = await bus.consumerStats(consumer);
        return count('SELECT COUNT(*) AS n FROM effects') === MESSAGES && stats.pending === 0 && stats.ackPending === 0;
      }, 'all effects and every message settled');

      const attempts = count('SELECT COUNT(*) AS n FROM attempts');
      console.log(`${kind}: ${MESSAGES} messages, ${effectsAtKill} effects at kill, ${attempts} attempts, ${attempts - MESSAGES} redelivered`);
      expect(count('SELECT COUNT(*) AS n FROM effects')).toBe(MESSAGES);
      expect(count('SELECT COUNT(DISTINCT message_id) AS n FROM attempts')).toBe(MESSAGES);
      expect(attempts).toBeGreaterThanOrEqual(MESSAGES);
    } finally {
      if (child) await kill(child);
      await bus.close();
      effects.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('NATS server killed and restarted', () => {
  it('loses nothing that was acknowledged to the publisher', async () => {
    const server = await LocalNatsServer.start();
    const topology = busTopology({ prefix: 'restart', roomPartitions: 1 });
    const bus = await JetStreamBus.connect({ servers: server.url }, busOptionsFor(topology));
    try {
      await bus.start();
      const publish = (n: number) => bus.publish(topology.inboundPdu.partition(0), pdu(n), { messageId: `$e${n}` });
      for (let n = 0; n < 50; n++) await publish(n);
      await server.restart(true);
      for (let n = 50; n < 100; n++) await publish(n);
      const handled = new Set<string>();
      await bus.consume(topology.consumers.stateResolverInbound(0), (m) => void handled.add(m.messageId));
      await waitFor(() => handled.size === 100, 'all 100 messages');
      expect([...handled].sort()).toEqual([...Array(100).keys()].map((n) => `$e${n}`).sort());
    } finally {
      await bus.close();
      await server.stop();
    }
  });
});
