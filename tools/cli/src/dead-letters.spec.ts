// Issue 11 defect 7: dead letters are kept until an operator removes them; this is the operator's way.
// Spawns the real `fedgate` bin (built dist, pinned Node) against an embedded deployment's bus file.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, EmbeddedBus, term, type InboundPdu } from '@fedgate/bus';
import { loadConfig } from '@fedgate/config';
import { topologyFor } from '@fedgate/platform';

const root = path.resolve(__dirname, '..', '..', '..');
const node = path.join(root, 'node_modules', '.bin', 'node');
const bin = path.join(root, 'tools', 'cli', 'bin', 'fedgate.js');

function fedgate(...args: string[]) {
  const r = spawnSync(node, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, FEDGATE_CONFIG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  execFileSync(node, [path.join(root, 'tools', 'build.mjs')], { cwd: root, stdio: 'ignore' });
}, 120_000);

describe('fedgate dead-letters', () => {
  let dir: string;
  let configFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-dead-letters-'));
    configFile = path.join(dir, 'fedgate.yaml');
    writeFileSync(configFile, `serverName: dl.example\nmode: embedded\ndataDir: ${JSON.stringify(dir)}\n`);
    const config = loadConfig({ argv: ['--config', configFile], env: {} });
    const topology = topologyFor(config);
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: config.sqlite.path, pollIntervalMs: 10 });
    await bus.start();
    const roomId = '!r:dl.example';
    const p = topology.inboundPdu.partitionOf(roomId);
    const sub = await bus.consume(topology.consumers.stateResolverInbound(p), (m) => term(`refused ${(m.data as InboundPdu).eventId}`));
    for (const n of [1, 2]) {
      const pdu: InboundPdu = { eventId: `$e${n}`, roomId, roomVersion: '10', origin: 'o.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } };
      await bus.publish(topology.inboundPdu.partition(p), pdu, { messageId: pdu.eventId });
    }
    while ((await bus.listDeadLetters()).length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await sub.stop();
    await bus.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defect 7: lists dead letters with their reasons and the original message, and removes one by its sequence', () => {
    const listed = fedgate('dead-letters', 'list', '--config', configFile, '--json');
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const letters = JSON.parse(listed.stdout) as Array<{ sequence: number; message_id: string; reason: string; data: { eventId: string } }>;
    expect(letters.map((l) => [l.message_id, l.reason, l.data.eventId])).toEqual([
      ['$e1', 'handler terminated: refused $e1', '$e1'],
      ['$e2', 'handler terminated: refused $e2', '$e2'],
    ]);

    const removed = fedgate('dead-letters', 'remove', '--config', configFile, String(letters[0].sequence));
    expect(removed).toMatchObject({ code: 0, stdout: `removed ${letters[0].sequence}\n` });
    expect(fedgate('dead-letters', 'remove', '--config', configFile, String(letters[0].sequence))).toMatchObject({ code: 1 });

    const text = fedgate('dead-letters', 'list', '--config', configFile);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(1);
    expect(text.stdout).toContain('handler terminated: refused $e2');

    expect(fedgate('dead-letters', 'remove', '--config', configFile, '--all')).toMatchObject({ code: 0 });
    expect(JSON.parse(fedgate('dead-letters', 'list', '--config', configFile, '--json').stdout)).toEqual([]);
  });

  it('replays a dead letter on its original subject for its consumer, and removes it', async () => {
    const config = loadConfig({ argv: ['--config', configFile], env: {} });
    const topology = topologyFor(config);
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: config.sqlite.path, pollIntervalMs: 10 });
    await bus.start();
    const roomId = '!r:dl.example';
    const p = topology.inboundPdu.partitionOf(roomId);
    const refusing = await bus.consume(topology.consumers.stateResolverInbound(p), () => term('refused'));
    const pdu: InboundPdu = { eventId: '$e3', roomId, roomVersion: '10', origin: 'o.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n: 3 } };
    await bus.publish(topology.inboundPdu.partition(p), pdu, { messageId: pdu.eventId });
    while (!(await bus.listDeadLetters()).some((d) => d.letter.messageId === '$e3')) await new Promise((resolve) => setTimeout(resolve, 10));
    await refusing.stop();
    const { sequence } = (await bus.listDeadLetters()).find((d) => d.letter.messageId === '$e3')!;

    const replayed = fedgate('dead-letters', 'replay', '--config', configFile, String(sequence));
    expect(replayed).toMatchObject({ code: 0, stdout: `replayed ${sequence} on ${topology.inboundPdu.partition(p)}\n` });
    const handled: InboundPdu[] = [];
    const accepting = await bus.consume(topology.consumers.stateResolverInbound(p), (m) => void handled.push(m.data as InboundPdu));
    while (handled.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await accepting.stop();
    expect(handled).toEqual([pdu]);
    expect((await bus.listDeadLetters()).some((d) => d.sequence === sequence)).toBe(false);
    await bus.close();
    expect(fedgate('dead-letters', 'replay', '--config', configFile, String(sequence)).code).toBe(1);
  });

  it('refuses sequences together with --all, and nonsense sequences', () => {
    expect(fedgate('dead-letters', 'remove', '--config', configFile, '--all', '3').code).toBe(2);
    expect(fedgate('dead-letters', 'remove', '--config', configFile, 'abc').code).toBe(2);
  });
});
