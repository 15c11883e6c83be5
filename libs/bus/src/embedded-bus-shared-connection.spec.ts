// The embedded store and bus share one SQLite file. With a connection each, every commit of one emptied the other's
// page cache (SQLite drops a connection's cache when another connection changed the file), so the reads after it went
// back to the file (issue 19). The gateway gives the bus the store's connection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ReceivedMessage } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import type { InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const pdu = (n: number): InboundPdu => ({ eventId: `$${n}`, roomId: '!r:x', roomVersion: '10', origin: 'remote.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

describe('embedded bus on a connection it is given (the store’s)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-shared-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('works on it, leaves its prepare alone, sees the other user’s commits as its own (no watch reads), and does not close it', async () => {
    const file = path.join(dir, 'fedgate.sqlite');
    const connection = new DatabaseSync(file);
    connection.exec('PRAGMA journal_mode = WAL; CREATE TABLE store_things (n INTEGER)');
    const prepare = connection.prepare;
    const topology = busTopology({ prefix: 'shared', roomPartitions: 1 });
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: file, connection, pollIntervalMs: 5 });
    await bus.start();
    const handled: number[] = [];
    await bus.consume(topology.consumers.stateResolverInbound(0), (m: ReceivedMessage<InboundPdu>) => {
      // The store's commits in the handler, on the same connection, between the bus's claim and settle.
      connection.prepare('INSERT INTO store_things (n) VALUES (?)').run(Number(m.data.pdu.n));
      handled.push(Number(m.data.pdu.n));
    });
    const polls = jest.spyOn(bus as unknown as { readDataVersion(): number }, 'readDataVersion');
    const watchReads = jest.spyOn(bus as unknown as { readSequence(): number }, 'readSequence');
    for (let n = 0; n < 10; n++) await bus.publish(topology.inboundPdu.subjectFor('!r:x'), pdu(n), { messageId: `m${n}` });
    await waitFor(() => handled.length === 10, 'every message');
    const seen = polls.mock.calls.length;
    await waitFor(() => polls.mock.calls.length >= seen + 2, 'two more polls');
    expect(handled).toEqual([...Array(10).keys()]);
    expect(connection.prepare).toBe(prepare);
    // One connection: its own commits do not change its data_version, so the watch never looks past it.
    expect(watchReads).not.toHaveBeenCalled();
    await bus.close();
    expect((connection.prepare('SELECT COUNT(*) AS n FROM store_things').get() as { n: number }).n).toBe(10);
    connection.close();
  });
});
