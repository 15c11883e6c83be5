// Issue 19: the pending record of an event committed in the same transaction as its row does not carry the PDU
// again (one JSON serialisation and ~1 KB of SQLite writes less per inbound PDU); a repair still reads it whole.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { eventFor } from '../testing/store-contract';
import { openSqliteStore } from './store';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fedgate-pending-pdu-'));
const file = path.join(dir, 'fedgate.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const room = '!pp:test';
const payloadText = (eventId: string) => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare('SELECT payload FROM store_pending_commits WHERE event_id = ?').get(eventId) as { payload: string }).payload;
  } finally {
    db.close();
  }
};

describe('pending commit record and the event row (issue 19, sqlite)', () => {
  it('a new event: the record holds no second copy of the PDU, and a reopened store (the repair on start) reads it back whole', async () => {
    const store = await openSqliteStore(file);
    const event = eventFor(room, '$pp-new', 2);
    const payload = { pdu: event.pdu, roomVersion: '10', status: 'accepted', before: 'b', after: 'a' };
    await store.commits.writeAll([{ pending: { commit: { eventId: event.eventId, roomId: room, payload, createdTs: 1 } }, stateRefs: { before: 'b', after: 'a' }, event }]);
    const stored = payloadText('$pp-new');
    expect(stored).not.toContain('"pdu"');
    expect(Buffer.byteLength(stored)).toBeLessThan(Buffer.byteLength(JSON.stringify(payload)) - Buffer.byteLength(JSON.stringify(event.pdu)) + 1);
    await store.close();

    const reopened = await openSqliteStore(file);
    expect(await reopened.pendingCommits.list(room)).toEqual([{ eventId: '$pp-new', roomId: room, payload, createdTs: 1 }]);
    await reopened.close();
  });

  it('an event held before (its row may be another copy) and a record written alone: the record keeps its own PDU', async () => {
    const store = await openSqliteStore(file);
    await store.events.append(eventFor(room, '$pp-held', 3, { outlier: true }));
    const held = eventFor(room, '$pp-held', 3);
    await store.commits.write({ pending: { commit: { eventId: held.eventId, roomId: room, payload: { pdu: held.pdu }, createdTs: 2 } }, stateRefs: { before: 'b', after: 'b' }, event: held });
    expect(payloadText('$pp-held')).toContain('"pdu"');
    const alone = eventFor(room, '$pp-alone', 4);
    await store.pendingCommits.add({ eventId: alone.eventId, roomId: room, payload: { pdu: alone.pdu }, createdTs: 3 });
    expect(payloadText('$pp-alone')).toContain('"pdu"');
    expect((await store.pendingCommits.get('$pp-alone'))?.payload).toEqual({ pdu: alone.pdu });
    await store.close();
  });

  it('a record whose PDU is a different object from the row\'s keeps its own copy (nothing assumed equal that is not the same)', async () => {
    const store = await openSqliteStore(file);
    const event = eventFor(room, '$pp-copy', 5);
    await store.commits.write({ pending: { commit: { eventId: event.eventId, roomId: room, payload: { pdu: { ...event.pdu } }, createdTs: 4 } }, stateRefs: { before: 'b', after: 'b' }, event });
    expect(payloadText('$pp-copy')).toContain('"pdu"');
    await store.close();
  });
});
