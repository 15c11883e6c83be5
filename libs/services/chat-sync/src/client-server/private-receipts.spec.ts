// Issue 14: `m.read.private` (through `/receipt/m.read.private/{eventId}` and `/read_markers`) was accepted and
// dropped. It is now kept per user, room and thread, never handed to the EDU sender (so it never leaves for
// another server), and told only to the application service that set it, as an ephemeral `m.receipt`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import { PrivateReceipts } from '../ephemeral/private-receipts';
import type { ApplicationService } from '../registration';
import { EphemeralController } from './ephemeral.controller';
import type { Requester } from './requester';

const ROOM = '!room:gw.test';
const ALICE = '@rc_alice:gw.test';

const serviceOf = (id: string, receiveEphemeral: boolean) => ({ id, registration: { receiveEphemeral, url: 'http://127.0.0.1:9' } }) as unknown as ApplicationService;

describe('issue 14: private read receipts are kept, told to their own service only, never federated', () => {
  let dir: string;
  let store: Store;
  let controller: EphemeralController;
  const sent: Array<{ eduType: string; content: unknown }> = [];
  const published: Array<{ subject: string; message: Record<string, any> }> = [];
  const bridge = serviceOf('bridge', true);
  const alice: Requester = { service: bridge, userId: ALICE };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-private-receipts-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    const bus = { publish: async (subject: string, message: Record<string, any>) => void published.push({ subject, message }) };
    const topology = { appservice: { subjectFor: (id: string) => `appservice.${id}` } };
    const sender = { send: async (eduType: string, content: unknown) => void sent.push({ eduType, content }) };
    const view = { membership: async () => 'join', event: async (eventId: string) => ({ eventId, roomId: ROOM }) };
    const accountData = { put: async () => undefined };
    controller = new EphemeralController(sender as never, view as never, accountData as never, new PrivateReceipts(store, bus as never, topology as never), store, { serverName: 'gw.test' } as never);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    sent.length = 0;
    published.length = 0;
  });

  it('/receipt/m.read.private keeps the receipt and pushes it to the setting service only; no EDU is sent', async () => {
    await controller.receipt(alice, ROOM, 'm.read.private', '$seen', { thread_id: '$thread' });
    expect(await store.privateReceipts.forRoom(ALICE, ROOM)).toEqual([{ userId: ALICE, roomId: ROOM, threadId: '$thread', eventId: '$seen', ts: expect.any(Number) }]);
    expect(sent).toEqual([]);
    expect(published).toHaveLength(1);
    expect(published[0].subject).toBe('appservice.bridge');
    expect(published[0].message).toMatchObject({
      appserviceId: 'bridge',
      kind: 'ephemeral',
      event: { type: 'm.receipt', room_id: ROOM, content: { $seen: { 'm.read.private': { [ALICE]: { ts: expect.any(Number), thread_id: '$thread' } } } } },
    });
  });

  it('/read_markers: m.read goes out as an EDU without the private one, which is kept', async () => {
    await controller.readMarkers(alice, ROOM, { 'm.read': '$public', 'm.read.private': '$private' });
    expect(sent).toHaveLength(1);
    expect(sent[0].eduType).toBe('m.receipt');
    expect(JSON.stringify(sent[0].content)).not.toContain('m.read.private');
    expect(JSON.stringify(sent[0].content)).not.toContain('$private');
    expect((await store.privateReceipts.forRoom(ALICE, ROOM)).find((r) => r.threadId === null)).toMatchObject({ eventId: '$private' });
    expect(published.map((p) => p.subject)).toEqual(['appservice.bridge']);
  });

  it('a service that did not ask for ephemeral events gets no push; the receipt is still kept, for that user only', async () => {
    const bot: Requester = { service: serviceOf('bot', false), userId: '@helper:gw.test' };
    await controller.receipt(bot, ROOM, 'm.read.private', '$bots', {});
    expect(published).toEqual([]);
    expect(sent).toEqual([]);
    expect(await store.privateReceipts.forRoom('@helper:gw.test', ROOM)).toMatchObject([{ eventId: '$bots' }]);
    expect((await store.privateReceipts.forRoom(ALICE, ROOM)).map((r) => r.eventId)).not.toContain('$bots');
  });
});
