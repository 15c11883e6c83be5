// The contract for chat-sync's repositories (profiles, aliases, local memberships, AS push queues, lifecycle),
// run by each adapter's spec beside the main store contract.
import type { Store } from '../ports/store';

export function describeChatStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`chat store contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
    });

    it('registers a user once and updates only the given profile fields', async () => {
      const profile = { userId: '@p1:gw.test', displayname: 'P', avatarUrl: null, appServiceId: 'as1', createdTs: 1 };
      expect(await store.profiles.create(profile)).toEqual({ created: true });
      expect(await store.profiles.create({ ...profile, displayname: 'Other' })).toEqual({ created: false });
      expect(await store.profiles.update('@p1:gw.test', { avatarUrl: 'mxc://gw.test/a' })).toEqual({ ...profile, avatarUrl: 'mxc://gw.test/a' });
      expect(await store.profiles.update('@p1:gw.test', { displayname: null })).toMatchObject({ displayname: null, avatarUrl: 'mxc://gw.test/a' });
      expect(await store.profiles.update('@nobody:gw.test', { displayname: 'x' })).toBeUndefined();
    });

    it('creates an alias once, reports the existing one, lists by room and removes', async () => {
      const alias = { alias: '#a1:gw.test', roomId: '!ar:test', servers: ['gw.test'], creator: '@p1:gw.test', createdTs: 1 };
      expect(await store.aliases.create(alias)).toEqual({ created: true });
      expect(await store.aliases.create({ ...alias, roomId: '!other:test' })).toEqual({ created: false, existing: alias });
      await store.aliases.create({ ...alias, alias: '#a0:gw.test' });
      expect((await store.aliases.forRoom('!ar:test')).map((a) => a.alias)).toEqual(['#a0:gw.test', '#a1:gw.test']);
      expect(await store.aliases.remove('#a1:gw.test')).toBe(true);
      expect(await store.aliases.remove('#a1:gw.test')).toBe(false);
      expect(await store.aliases.get('#a1:gw.test')).toBeUndefined();
    });

    it('keeps the latest local membership per user and room', async () => {
      await store.memberships.set('@m1:gw.test', '!m1:test', 'join', '$1');
      await store.memberships.set('@m1:gw.test', '!m2:test', 'invite', '$2');
      await store.memberships.set('@m1:gw.test', '!m3:test', 'join', '$3');
      await store.memberships.set('@m1:gw.test', '!m3:test', 'leave', '$4');
      expect(await store.memberships.roomsOf('@m1:gw.test', 'join')).toEqual(['!m1:test']);
      expect(await store.memberships.roomsOf('@m1:gw.test', 'leave')).toEqual(['!m3:test']);
    });

    it('pins an opened AS transaction until acked, in enqueue order within limits, deduping items', async () => {
      const q = store.appServiceQueue;
      const as = 'asq-1';
      expect(await q.openTransaction(as, { maxEvents: 2, maxEphemeral: 1 })).toBeNull();
      for (const [id, kind] of [['$e1', 'event'], ['$e2', 'event'], ['$e3', 'event'], ['typing', 'ephemeral']] as const) {
        expect(await q.enqueue(as, { itemId: id, kind, event: { id } })).toEqual({ inserted: true });
      }
      expect(await q.enqueue(as, { itemId: '$e1', kind: 'event', event: { id: '$e1' } })).toStrictEqual({ inserted: false });
      expect(await q.pendingCount(as)).toBe(4);
      const first = await q.openTransaction(as, { maxEvents: 2, maxEphemeral: 1 });
      expect(first).toEqual({ txnId: '1', events: [{ id: '$e1' }, { id: '$e2' }], ephemeral: [] });
      expect(await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 })).toEqual(first);
      await q.ackTransaction(as, 'stale');
      expect(await q.pendingCount(as)).toBe(4);
      await q.ackTransaction(as, '1');
      await q.ackTransaction(as, '1');
      expect(await q.pendingCount(as)).toBe(2);
      expect(await q.openTransaction(as, { maxEvents: 2, maxEphemeral: 1 })).toEqual({ txnId: '2', events: [{ id: '$e3' }], ephemeral: [{ id: 'typing' }] });
      await q.ackTransaction(as, '2');
      expect(await q.openTransaction(as, { maxEvents: 2, maxEphemeral: 1 })).toBeNull();
    });

    // as-queue-safety: the ack removes the items its transaction carried, not every item queued up to its last one
    // (the Mongo interleave of two enqueuers, numbered before the open and inserted after, is pinned in its spec).
    it('an item enqueued while a transaction is open stays queued after its ack and goes in the next one', async () => {
      const q = store.appServiceQueue;
      const as = 'asq-while-open';
      await q.enqueue(as, { itemId: '$first', kind: 'event', event: { id: '$first' } });
      const opened = await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 });
      await q.enqueue(as, { itemId: '$second', kind: 'event', event: { id: '$second' } });
      await q.ackTransaction(as, opened!.txnId);
      expect(await q.pendingCount(as)).toBe(1);
      expect((await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 }))?.events).toEqual([{ id: '$second' }]);
    });

    // chaos-dup: a push handled (item queued) whose bus ack was lost (process killed, NATS down) is handed over
    // again after the pusher already delivered and acked it; queued again it went out in a second transaction.
    it('an item enqueued again after its transaction was acked is not queued again (a redelivered push)', async () => {
      const q = store.appServiceQueue;
      const as = 'asq-redelivered';
      expect(await q.enqueue(as, { itemId: '$once', kind: 'event', event: { id: '$once' } })).toEqual({ inserted: true });
      expect(await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 })).toEqual({ txnId: '1', events: [{ id: '$once' }], ephemeral: [] });
      await q.ackTransaction(as, '1');
      expect(await q.enqueue(as, { itemId: '$once', kind: 'event', event: { id: '$once' } })).toStrictEqual({ inserted: false, delivered: true });
      expect(await q.pendingCount(as)).toBe(0);
      expect(await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 })).toBeNull();
      // Another service's queue is its own: the same event goes to it.
      expect(await q.enqueue('asq-other', { itemId: '$once', kind: 'event', event: { id: '$once' } })).toEqual({ inserted: true });
    });

    // issue 19: a run of pushes goes to the queue in one write; each item is answered as `enqueue` would answer it.
    it('enqueueMany queues a run of items in order, answering each like enqueue (queued already, delivered)', async () => {
      const q = store.appServiceQueue;
      const as = 'asq-many';
      await q.enqueue(as, { itemId: '$done', kind: 'event', event: { id: '$done' } });
      await q.ackTransaction(as, (await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 }))!.txnId);
      await q.enqueue(as, { itemId: '$queued', kind: 'event', event: { id: '$queued' } });
      const run = ['$a', '$queued', '$done', '$b', '$a'].map((id) => ({ itemId: id, kind: 'event' as const, event: { id } }));
      expect(await q.enqueueMany(as, run)).toStrictEqual([{ inserted: true }, { inserted: false }, { inserted: false, delivered: true }, { inserted: true }, { inserted: false }]);
      expect(await q.enqueueMany(as, [])).toEqual([]);
      expect((await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 }))?.events).toEqual([{ id: '$queued' }, { id: '$a' }, { id: '$b' }]);
    });

    it('forgets delivered items only when pruned past their age (then an item is new again)', async () => {
      const q = store.appServiceQueue;
      const as = 'asq-pruned';
      await q.enqueue(as, { itemId: '$old', kind: 'event', event: { id: '$old' } });
      const txn = await q.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 });
      await q.ackTransaction(as, txn!.txnId);
      expect(await q.pruneDelivered(Date.now() - 60_000)).toBe(0);
      expect(await q.enqueue(as, { itemId: '$old', kind: 'event', event: { id: '$old' } })).toEqual({ inserted: false, delivered: true });
      expect(await q.pruneDelivered(Date.now() + 60_000)).toBeGreaterThanOrEqual(1);
      expect(await q.enqueue(as, { itemId: '$old', kind: 'event', event: { id: '$old' } })).toEqual({ inserted: true });
    });

    it('keeps a deactivation once: first time and service stay, erased only goes up', async () => {
      const lc = store.chatLifecycle;
      const first = { userId: '@d1:gw.test', deactivatedTs: 5, erased: false, appServiceId: 'as1' };
      expect(await lc.deactivate(first)).toEqual({ created: true, record: first });
      expect(await lc.deactivate({ ...first, deactivatedTs: 9, erased: true, appServiceId: 'as2' })).toEqual({ created: false, record: { ...first, erased: true } });
      expect(await lc.deactivate({ ...first, deactivatedTs: 10 })).toEqual({ created: false, record: { ...first, erased: true } });
      expect(await lc.getDeactivated('@d2:gw.test')).toBeUndefined();
    });

    it('stores a room deletion by room and by delete ID; a later one replaces it', async () => {
      const lc = store.chatLifecycle;
      const deletion = { roomId: '!del:gw.test', deleteId: 'del-1', deletedTs: 1, appServiceId: 'as1', blocked: true, purged: false, result: { kicked_users: ['@a:gw.test'], 'odd.key$': 1 } };
      await lc.recordRoomDeletion(deletion);
      expect(await lc.getRoomDeletion('!del:gw.test')).toEqual(deletion);
      expect(await lc.getRoomDeletionById('del-1')).toEqual(deletion);
      await lc.recordRoomDeletion({ ...deletion, deleteId: 'del-2', blocked: false, purged: true });
      expect(await lc.getRoomDeletion('!del:gw.test')).toMatchObject({ deleteId: 'del-2', blocked: false, purged: true });
      expect(await lc.getRoomDeletionById('del-1')).toBeUndefined();
      expect(await lc.getRoomDeletion('!other:gw.test')).toBeUndefined();
    });

    it('records a forgotten room per user, replacing the earlier record', async () => {
      const lc = store.chatLifecycle;
      await lc.forget({ userId: '@f1:gw.test', roomId: '!f:gw.test', membershipEventId: '$leave1', forgottenTs: 1 });
      await lc.forget({ userId: '@f1:gw.test', roomId: '!f:gw.test', membershipEventId: '$leave2', forgottenTs: 2 });
      expect(await lc.getForgotten('@f1:gw.test', '!f:gw.test')).toEqual({ userId: '@f1:gw.test', roomId: '!f:gw.test', membershipEventId: '$leave2', forgottenTs: 2 });
      expect(await lc.getForgotten('@f2:gw.test', '!f:gw.test')).toBeUndefined();
    });

    it('keeps the room directory: visibility per room, public rooms listed in room ID order a page at a time', async () => {
      const dir = store.roomDirectory;
      for (const [roomId, visibility] of [['!d3:gw.test', 'public'], ['!d1:gw.test', 'public'], ['!d2:gw.test', 'private'], ['!d4:gw.test', 'public']] as const) {
        await dir.set({ roomId, visibility, appServiceId: 'as1', updatedTs: 1 });
      }
      expect(await dir.get('!d2:gw.test')).toEqual({ roomId: '!d2:gw.test', visibility: 'private', appServiceId: 'as1', updatedTs: 1 });
      expect(await dir.get('!nope:gw.test')).toBeUndefined();
      expect(await dir.listPublic({ limit: 2 })).toEqual(['!d1:gw.test', '!d3:gw.test']);
      expect(await dir.listPublic({ after: '!d3:gw.test', limit: 2 })).toEqual(['!d4:gw.test']);
      expect(await dir.countPublic()).toBe(3);
      await dir.set({ roomId: '!d3:gw.test', visibility: 'private', appServiceId: 'as2', updatedTs: 2 });
      expect(await dir.listPublic({ limit: 10 })).toEqual(['!d1:gw.test', '!d4:gw.test']);
      expect(await dir.get('!d3:gw.test')).toMatchObject({ visibility: 'private', appServiceId: 'as2' });
    });
  });
}
