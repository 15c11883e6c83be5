// The contract for the account-data repository (and the other per-user client stores: private receipts, OpenID tokens), run by each adapter's spec beside the main store contract.
import type { Store } from '../ports/store';

export function describeAccountDataContract(name: string, open: () => Promise<Store>): void {
  describe(`account data contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
    });

    it('keeps global and per-room entries apart, per user, and replaces on put', async () => {
      const ad = store.accountData;
      const user = '@ad1:gw.test';
      await ad.put({ userId: user, roomId: null, type: 'm.direct', content: { '@x:y': ['!r:y'] }, updatedTs: 1 });
      await ad.put({ userId: user, roomId: '!r:y', type: 'm.direct', content: { room: true }, updatedTs: 2 });
      await ad.put({ userId: '@ad2:gw.test', roomId: null, type: 'm.direct', content: { other: 1 }, updatedTs: 3 });
      expect(await ad.get(user, null, 'm.direct')).toEqual({ userId: user, roomId: null, type: 'm.direct', content: { '@x:y': ['!r:y'] }, updatedTs: 1 });
      expect((await ad.get(user, '!r:y', 'm.direct'))?.content).toEqual({ room: true });
      expect(await ad.get(user, '!other:y', 'm.direct')).toBeUndefined();
      await ad.put({ userId: user, roomId: null, type: 'm.direct', content: {}, updatedTs: 4 });
      expect(await ad.get(user, null, 'm.direct')).toMatchObject({ content: {}, updatedTs: 4 });
      expect(await ad.countForUser(user)).toBe(2);
      expect(await ad.countForUser(user, ['m.direct', 'x.other'])).toBe(0);
      expect(await ad.countForUser('@nobody:gw.test')).toBe(0);
      expect(await ad.deleteForUser(user)).toBe(2);
      expect(await ad.get(user, '!r:y', 'm.direct')).toBeUndefined();
      expect(await ad.countForUser('@ad2:gw.test')).toBe(1);
    });

    it('keeps content keys with dots and dollars exactly, and lists a user’s entries global first', async () => {
      const ad = store.accountData;
      const user = '@ad3:gw.test';
      const content = { 'm.tag.x': { order: 0.5 }, $odd: ['a.b'], nested: { 'c.d': null } };
      await ad.put({ userId: user, roomId: '!b:y', type: 'm.tag', content, updatedTs: 1 });
      await ad.put({ userId: user, roomId: '!a:y', type: 'm.fully_read', content: { event_id: '$e' }, updatedTs: 1 });
      await ad.put({ userId: user, roomId: null, type: 'z.global', content: {}, updatedTs: 1 });
      expect((await ad.get(user, '!b:y', 'm.tag'))?.content).toEqual(content);
      expect((await ad.listForUser(user)).map((e) => [e.roomId, e.type])).toEqual([
        [null, 'z.global'],
        ['!a:y', 'm.fully_read'],
        ['!b:y', 'm.tag'],
      ]);
    });

    it('keeps private read receipts per user, room and thread, replaces on put, erases per user', async () => {
      const receipts = store.privateReceipts;
      const user = '@pr1:gw.test';
      await receipts.put({ userId: user, roomId: '!r:y', threadId: null, eventId: '$a', ts: 1 });
      await receipts.put({ userId: user, roomId: '!r:y', threadId: '$thread', eventId: '$t', ts: 2 });
      await receipts.put({ userId: user, roomId: '!other:y', threadId: null, eventId: '$o', ts: 3 });
      await receipts.put({ userId: '@pr2:gw.test', roomId: '!r:y', threadId: null, eventId: '$b', ts: 4 });
      await receipts.put({ userId: user, roomId: '!r:y', threadId: null, eventId: '$a2', ts: 5 });
      expect(await receipts.forRoom(user, '!r:y')).toEqual([
        { userId: user, roomId: '!r:y', threadId: null, eventId: '$a2', ts: 5 },
        { userId: user, roomId: '!r:y', threadId: '$thread', eventId: '$t', ts: 2 },
      ]);
      expect(await receipts.forRoom('@pr2:gw.test', '!r:y')).toEqual([{ userId: '@pr2:gw.test', roomId: '!r:y', threadId: null, eventId: '$b', ts: 4 }]);
      expect(await receipts.forRoom('@nobody:gw.test', '!r:y')).toEqual([]);
      expect(await receipts.deleteForUser(user)).toBe(3);
      expect(await receipts.forRoom(user, '!r:y')).toEqual([]);
      expect(await receipts.forRoom('@pr2:gw.test', '!r:y')).toHaveLength(1);
    });

    it('finds an OpenID token by its hash until it expires, and purges expired ones', async () => {
      const tokens = store.openIdTokens;
      await tokens.put({ tokenHash: 'h-live', userId: '@oid:gw.test', expiresTs: 2000 });
      await tokens.put({ tokenHash: 'h-old', userId: '@oid:gw.test', expiresTs: 500 });
      expect(await tokens.findValid('h-live', 1000)).toEqual({ tokenHash: 'h-live', userId: '@oid:gw.test', expiresTs: 2000 });
      expect(await tokens.findValid('h-live', 2000)).toBeUndefined();
      expect(await tokens.findValid('h-old', 1000)).toBeUndefined();
      expect(await tokens.findValid('h-unknown', 0)).toBeUndefined();
      expect(await tokens.purgeExpired(1000)).toBe(1);
      expect(await tokens.findValid('h-old', 0)).toBeUndefined();
    });
  });
}
