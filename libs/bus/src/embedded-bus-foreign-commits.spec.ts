// The embedded store shares the bus's SQLite file, so the bus's watch for other processes' commits fired on every
// store commit and read the pending messages each time (~10 reads a second under load, issue 19).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync, StatementSync } from 'node:sqlite';
import { nak, type ReceivedMessage } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import type { InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const pdu = (n: number): InboundPdu => ({ eventId: `$${n}`, roomId: '!r:x', roomVersion: '10', origin: 'remote.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

describe('embedded bus: the watch for other processes’ commits (issue 19: it read the pending messages on each store commit)', () => {
  let dir: string;
  const closing: Array<{ close(): unknown }> = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-foreign-'));
  });
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a commit of another connection that published nothing (the store’s) reads no pending messages while the loops sleep without a timer; another process’s publish still wakes them, and a loop waiting for a delay still looks', async () => {
    const topology = busTopology({ prefix: 'foreign', roomPartitions: 1 });
    const file = path.join(dir, 'bus.sqlite');
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 5 });
    closing.push(bus);
    await bus.start();
    const all = jest.spyOn(StatementSync.prototype, 'all');
    const pendingScans = () => all.mock.contexts.filter((statement) => String(statement.sourceSQL).startsWith('SELECT DISTINCT durable FROM bus_pending')).length;
    const polls = jest.spyOn(bus as unknown as { readDataVersion(): number }, 'readDataVersion');
    /** Waits until the watch has looked twice more (so it saw what was committed before). */
    const watched = async () => {
      const seen = polls.mock.calls.length;
      await waitFor(() => polls.mock.calls.length >= seen + 2, 'two more polls');
    };
    try {
      const handled: number[] = [];
      let delayedOnce = false;
      await bus.consume(topology.consumers.stateResolverInbound(0), (m: ReceivedMessage<InboundPdu>) => {
        const n = Number(m.data.pdu.n);
        // Message 1 asks to come again in an hour: its loop then sleeps until it is visible.
        if (n === 1 && !delayedOnce) {
          delayedOnce = true;
          return nak(3_600_000);
        }
        handled.push(n);
        return undefined;
      });
      await watched();
      const store = new DatabaseSync(file);
      closing.push(store);
      store.exec('CREATE TABLE store_things (n INTEGER)');
      for (let n = 0; n < 10; n++) {
        store.prepare('INSERT INTO store_things (n) VALUES (?)').run(n);
        await watched();
      }
      // Before: one read of the pending messages per store commit noticed (10 here).
      expect(pendingScans()).toBe(0);

      const other = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 3_600_000 });
      closing.push(other);
      const subject = topology.inboundPdu.subjectFor('!r:x');
      await other.publish(subject, pdu(0), { messageId: 'm0' });
      await waitFor(() => handled.includes(0), 'the message published by another process');
      expect(pendingScans()).toBeGreaterThanOrEqual(1);

      await other.publish(subject, pdu(1), { messageId: 'm1' });
      await waitFor(() => delayedOnce, 'the delayed message handled once');
      await watched();
      const before = pendingScans();
      store.prepare('INSERT INTO store_things (n) VALUES (?)').run(10);
      await watched();
      // The loop sleeps until message 1 is visible: another process's settle or release might free its window sooner.
      expect(pendingScans()).toBe(before + 1);
    } finally {
      all.mockRestore();
    }
  });

  it('a message another process published and held when the watch looked, then gave back, is handled here: the loop was woken to look at it, so it waits for it', async () => {
    const topology = busTopology({ prefix: 'handback', roomPartitions: 1 });
    const file = path.join(dir, 'bus.sqlite');
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 5 });
    closing.push(bus);
    await bus.start();
    const polls = jest.spyOn(bus as unknown as { readDataVersion(): number }, 'readDataVersion');
    const watched = async () => {
      const seen = polls.mock.calls.length;
      await waitFor(() => polls.mock.calls.length >= seen + 2, 'two more polls');
    };
    const consumer = topology.consumers.stateResolverInbound(0);
    const handled: number[] = [];
    await bus.consume(consumer, (m: ReceivedMessage<InboundPdu>) => void handled.push(Number(m.data.pdu.n)));
    await watched();
    const other = new EmbeddedBus({ ...busOptionsFor(topology), path: file, pollIntervalMs: 3_600_000 });
    closing.push(other);
    // The other process publishes and claims at once (its own loop would), before this bus's watch looks.
    await other.publish(topology.inboundPdu.subjectFor('!r:x'), pdu(0), { messageId: 'm0' });
    const claimed = other.claimRun(consumer, new Set(), 32);
    expect(claimed).toHaveLength(1);
    await watched();
    // It stops and gives the message back: a commit that publishes nothing.
    other.release(consumer, claimed[0]!);
    // Not a speed check: without the look the loop would sleep until the next publish.
    await waitFor(() => handled.includes(0), 'the message given back', 10_000);
  }, 30_000);
});
