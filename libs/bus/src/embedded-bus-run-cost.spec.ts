// What one run of a one-at-a-time loop costs in SQLite work (issue 19, paced CPU: runs are short when PDUs come 50
// per /send, so a run's fixed costs weigh): pinned so a cut is not lost again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync, StatementSync } from 'node:sqlite';
import type { BusSubscription, ReceivedMessage } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import type { InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const pdu = (n: number): InboundPdu => ({ eventId: `$${n}`, roomId: '!r:x', roomVersion: '10', origin: 'remote.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

describe('embedded bus: the cost of a run (issue 19, paced CPU)', () => {
  let dir: string;
  let bus: EmbeddedBus;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-run-cost-'));
  });
  afterEach(async () => {
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a batch of 20 handled by an idle ordered consumer: one claim and one settle commit, two reads of the pending window, one lease write, message read and settle per message, one heartbeat timer', async () => {
    const topology = busTopology({ prefix: 'run-cost', roomPartitions: 1 });
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 3_600_000 });
    await bus.start();
    const handled: number[] = [];
    await bus.consume(topology.consumers.stateResolverInbound(0), (m: ReceivedMessage<InboundPdu>) => void handled.push(Number(m.data.pdu.n)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const total = 20;
    const items = Array.from({ length: total }, (_, n) => ({ subject: topology.inboundPdu.subjectFor('!r:x'), data: pdu(n), options: { messageId: `m${n}` } }));
    const statements: string[] = [];
    const exec = jest.spyOn(DatabaseSync.prototype, 'exec');
    const runs = (['all', 'get', 'run'] as const).map((method) => jest.spyOn(StatementSync.prototype, method));
    const intervals = jest.spyOn(global, 'setInterval');
    try {
      await bus.publishBatch(items);
      const publishCommits = exec.mock.calls.filter(([sql]) => sql.startsWith('BEGIN')).length;
      for (const s of [exec, ...runs]) s.mockClear();
      await waitFor(async () => handled.length === total && (await bus.consumerStats(topology.consumers.stateResolverInbound(0))).pending === 0, 'the batch settled');
      for (const s of runs) for (const statement of s.mock.contexts) statements.push(String(statement.sourceSQL));
      const consumerCommits = exec.mock.calls.filter(([sql]) => sql.startsWith('BEGIN')).length;
      const byKind = (prefix: string) => statements.filter((s) => s.startsWith(prefix)).length;
      expect(handled).toEqual([...Array(total).keys()]);
      expect(publishCommits).toBe(1);
      // The claim, then the settle with the claim of the next run (which found nothing). consumerStats reads only.
      expect(consumerCommits).toBe(2);
      // Before (paced-cpu's cuts): 4 reads of the window (a look before the claim, and a look and a wait hint after the settle).
      expect(byKind('SELECT seq, deliveries, visible_at FROM bus_pending') + byKind('SELECT MIN(visible_at)')).toBe(2);
      expect(byKind('UPDATE bus_pending SET deliveries')).toBe(total);
      expect(byKind('SELECT seq, stream, subject, msg_id, data, headers FROM bus_messages')).toBe(total);
      expect(byKind('DELETE FROM bus_pending')).toBe(total);
      // Before: one heartbeat per message.
      expect(intervals.mock.calls.filter(([, ms]) => ms !== 3_600_000).length).toBe(1);
    } finally {
      for (const s of [exec, ...runs, intervals]) s.mockRestore();
    }
  });

  it('a publish wakes the loops whose filter matches its subject, worked out once per subject: not every loop’s filter matched again at every publish', async () => {
    const topology = busTopology({ prefix: 'wake-match', roomPartitions: 16 });
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 3_600_000 });
    await bus.start();
    let filterReads = 0;
    const counted = <T extends object>(consumer: T): T =>
      new Proxy(consumer, {
        get(target, key, receiver) {
          if (key === 'filterSubject') filterReads++;
          return Reflect.get(target, key, receiver) as unknown;
        },
      });
    const handled: number[] = [];
    const partition = topology.inboundPdu.partitionOf('!r:x');
    let first: BusSubscription | undefined;
    for (let p = 0; p < topology.roomPartitions; p++) {
      const subscription = await bus.consume(counted(topology.consumers.stateResolverInbound(p)), (m: ReceivedMessage<InboundPdu>) => void handled.push(Number(m.data.pdu.n)));
      if (p === partition) first = subscription;
      await bus.consume(counted(topology.consumers.chatSyncRoomLog(p)), () => undefined);
    }
    const subject = topology.inboundPdu.subjectFor('!r:x');
    await bus.publish(subject, pdu(0), { messageId: 'm0' });
    await waitFor(() => handled.length === 1, 'the first message');
    filterReads = 0;
    for (let n = 1; n <= 20; n++) await bus.publish(subject, pdu(n), { messageId: `m${n}` });
    await waitFor(() => handled.length === 21, 'the rest');
    // Before: each publish matched the filter of each of the 32 loops (640 reads here).
    expect(filterReads).toBe(0);
    // A loop started since is woken too (the loops of a subject are worked out again when the loops change).
    await first!.stop();
    const again: number[] = [];
    await bus.consume(topology.consumers.stateResolverInbound(partition), (m: ReceivedMessage<InboundPdu>) => void again.push(Number(m.data.pdu.n)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await bus.publish(subject, pdu(21), { messageId: 'm21' });
    await waitFor(() => again.includes(21), 'the message published after the loop was started again');
  });
});
