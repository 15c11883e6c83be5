import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { busTopology, type AppServicePush, type Bus, type JsonObject, type RoomLogEntry } from '@fedgate/bus';
import type { Pdu } from '@fedgate/protocol';
import { openSqliteStore, type EventStatus, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry, type AppServiceRegistration } from '../registration';
import { RoomLogFanout } from './room-log-fanout';

const server = 'hs.test';
const roomId = '!room:hs.test';

const registration: AppServiceRegistration = {
  id: 'chat',
  url: 'http://chat.test',
  asToken: 'as-chat',
  hsToken: 'hs-chat',
  senderLocalpart: 'chatbot',
  namespaces: { users: [], aliases: [], rooms: [{ exclusive: false, regex: '!room:hs\\.test' }] },
  rateLimited: false,
  receiveEphemeral: false,
  protocols: [],
  source: 'chat.yaml',
};

describe('RoomLogFanout: what reaches the application service', () => {
  let dir: string;
  let store: Store;
  let pushed: string[];
  let fanout: RoomLogFanout;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-fanout-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    pushed = [];
    const bus = { publish: async (_subject: string, push: AppServicePush) => void pushed.push(push.eventId) } as unknown as Bus;
    fanout = new RoomLogFanout(store, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([registration], server), server, pino({ level: 'silent' }));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const pduOf = (type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}): Pdu =>
    ({ type, sender: '@mallory:remote.test', room_id: roomId, content, origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [], hashes: { sha256: 'x' }, signatures: {}, ...extra }) as Pdu;

  async function stored(eventId: string, pdu: Pdu, status: EventStatus = 'accepted'): Promise<void> {
    await store.events.append({ eventId, roomId, type: pdu.type, stateKey: pdu.state_key as string | undefined, depth: 1, prevEventIds: [], authEventIds: [], pdu, status, outlier: false, receivedTs: 1 });
  }

  const entry = (eventId: string, pdu: Pdu, over: Partial<RoomLogEntry> = {}): RoomLogEntry => ({
    eventId,
    roomId,
    outcome: 'accepted',
    local: false,
    event: { ...pdu, event_id: eventId, room_id: roomId } as unknown as JsonObject,
    stateDelta: {},
    joinedServers: [],
    ...over,
  });

  describe('redactions are pushed only once applied (issue 10, defect 5)', () => {
    it('holds back a redaction the room log says did not apply (its sender may not redact the target)', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: [] }));
      expect(pushed).toEqual([]);
    });

    it('pushes a redaction that applied', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: ['$redaction'] }));
      expect(pushed).toEqual(['$redaction']);
    });

    it('releases a held-back redaction right after its target, once the target came and the redaction applied', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await stored('$redaction', redaction);
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: [] }));
      await fanout.handle(entry('$target', pduOf('m.room.message', { body: 'hi' }), { redactionsApplied: ['$redaction'] }));
      expect(pushed).toEqual(['$target', '$redaction']);
    });

    it('checks the store for an entry that does not say (from before the field): unapplied stays back', async () => {
      await stored('$target', pduOf('m.room.message', { body: 'hi' }));
      await fanout.handle(entry('$redaction', pduOf('m.room.redaction', {}, { redacts: '$target' })));
      expect(pushed).toEqual([]);
    });
  });

  it('pushes a soft-failed state event when a later event brings it into current state (issue 10, defect 11)', async () => {
    const topic = pduOf('m.room.topic', { topic: 'from the other branch' }, { state_key: '' });
    await stored('$soft', topic, 'soft_failed');
    await fanout.handle(entry('$soft', topic, { outcome: 'soft-failed' }));
    expect(pushed).toEqual([]);
    const merge = pduOf('m.room.message', { body: 'merges both branches' });
    await fanout.handle(entry('$merge', merge, { stateDelta: { 'm.room.topic\u0000': '$soft' } }));
    expect(pushed).toEqual(['$soft', '$merge']);
  });
});
