// The one behaviour contract every store adapter must meet. Each adapter's spec calls
// `describeStoreContract` with a way to open a fresh store; tests use distinct room IDs and names,
// so they do not depend on one another.
import type { Pdu } from '@fedgate/protocol';
import type { EventRecord, EventStatus } from '../ports/events';
import type { RemoteServerKey } from '../ports/federation';
import type { AppServiceRegistration, MediaRecord, MediaThumbnailRecord } from '../ports/platform';
import { stateTupleKey, type StateEntry, type StateMap } from '../ports/state';
import type { Store } from '../ports/store';
import { CommitFencedError } from '../ports/pending-commits';
import type { AuditEntry } from '../ports/audit';
import { MAX_SNAPSHOT_CHAIN } from '../shared/snapshots';

export interface StoreContractOptions {
  /** Opens a store on the same data as the last `open` (after it was closed): enables the durability tests. */
  reopen?: () => Promise<Store>;
}

export function pduFor(roomId: string, eventId: string, depth: number, extra: Partial<Pdu> = {}): Pdu {
  return {
    room_id: roomId,
    sender: '@alice:remote.test',
    origin_server_ts: 1_700_000_000_000 + depth,
    type: 'm.room.message',
    content: { body: `event ${eventId}`, 'm.relates_to': { rel_type: 'm.thread', event_id: '$root' }, $dollar: 1, 'dotted.key': { nested: [1, 'two', null, true] } },
    prev_events: [],
    auth_events: [],
    depth,
    hashes: { sha256: 'aGFzaA' },
    signatures: { 'remote.test': { 'ed25519:a': 'c2ln' } },
    ...extra,
  };
}

export function eventFor(roomId: string, eventId: string, depth: number, over: Partial<EventRecord> = {}): EventRecord {
  return {
    eventId,
    roomId,
    type: 'm.room.message',
    depth,
    prevEventIds: depth > 1 ? [`$${roomId}-${depth - 1}`] : [],
    authEventIds: ['$create'],
    pdu: pduFor(roomId, eventId, depth),
    status: 'accepted',
    outlier: false,
    receivedTs: 1_700_000_000_000 + depth,
    ...over,
  };
}

const entry = (type: string, stateKey: string, eventId: string | null): StateEntry => ({ type, stateKey, eventId });
const asObject = (state: StateMap | undefined) => (state ? Object.fromEntries([...state].sort(([a], [b]) => (a < b ? -1 : 1))) : undefined);

export function describeStoreContract(name: string, open: () => Promise<Store>, options: StoreContractOptions = {}): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
    });

    describe('events', () => {
      it('appends an event once: the same ID again is no error and changes nothing', async () => {
        const first = eventFor('!once:test', '$once-1', 1);
        expect(await store.events.append(first)).toEqual({ inserted: true });
        expect(await store.events.append({ ...first, status: 'rejected', reason: 'later' })).toEqual({ inserted: false });
        expect(await store.events.get('$once-1')).toEqual(first);
        expect(await store.events.byDepthRange({ roomId: '!once:test', minDepth: 0, maxDepth: 10, limit: 10 })).toHaveLength(1);
      });

      it('appends many, skipping IDs already stored or repeated in the batch', async () => {
        const room = '!many:test';
        await store.events.append(eventFor(room, '$many-1', 1));
        const batch = [1, 2, 3, 2].map((d) => eventFor(room, `$many-${d}`, d));
        const { inserted } = await store.events.appendMany(batch);
        expect(inserted.sort()).toEqual(['$many-2', '$many-3']);
        const found = await store.events.getMany(['$many-1', '$many-3', '$nope']);
        expect([...found.keys()].sort()).toEqual(['$many-1', '$many-3']);
        expect(await store.events.missing(['$nope', '$many-2', '$also-nope'])).toEqual(['$nope', '$also-nope']);
        expect(await store.events.appendMany([])).toEqual({ inserted: [] });
      });

      it('round-trips the PDU JSON exactly, keys with dots and dollars included, and state keys', async () => {
        const pdu = pduFor('!json:test', '$json-1', 5, { type: 'm.room.member', state_key: '@bob:x', unsigned: { age: 3 } });
        const event = eventFor('!json:test', '$json-1', 5, { type: 'm.room.member', stateKey: '@bob:x', pdu });
        await store.events.append(event);
        const back = await store.events.get('$json-1');
        expect(back?.pdu).toEqual(pdu);
        expect(back?.stateKey).toBe('@bob:x');
        const emptyKey = eventFor('!json:test', '$json-2', 6, { type: 'm.room.name', stateKey: '' });
        await store.events.append(emptyKey);
        expect((await store.events.get('$json-2'))?.stateKey).toBe('');
      });

      it('keeps rejection and soft-fail reasons queryable by room and status', async () => {
        const room = '!rej:test';
        await store.events.appendMany([
          eventFor(room, '$rej-1', 1),
          eventFor(room, '$rej-2', 2, { status: 'rejected', reason: 'auth: sender not joined' }),
          eventFor(room, '$rej-3', 3, { status: 'soft_failed', reason: 'soft-fail: banned in current state' }),
          eventFor(room, '$rej-4', 4, { status: 'rejected', reason: 'auth: bad power level' }),
        ]);
        const rejected = await store.events.byStatus(room, 'rejected', 10);
        expect(rejected.map((e) => [e.eventId, e.reason])).toEqual([
          ['$rej-4', 'auth: bad power level'],
          ['$rej-2', 'auth: sender not joined'],
        ]);
        expect((await store.events.byStatus(room, 'soft_failed', 10)).map((e) => e.reason)).toEqual(['soft-fail: banned in current state']);
        expect((await store.events.get('$rej-2'))?.reason).toBe('auth: sender not joined');
      });

      it('changes the outcome of a stored event (outlier joining the timeline) and reports unknown IDs', async () => {
        await store.events.append(eventFor('!out:test', '$out-1', 1, { outlier: true }));
        expect(await store.events.setOutcome('$out-1', { status: 'soft_failed', reason: 'soft', outlier: false })).toBe(true);
        const back = await store.events.get('$out-1');
        expect([back?.status, back?.reason, back?.outlier]).toEqual(['soft_failed', 'soft', false]);
        expect(await store.events.setOutcome('$out-1', { status: 'accepted', outlier: false })).toBe(true);
        expect((await store.events.get('$out-1'))?.reason).toBeUndefined();
        expect(await store.events.setOutcome('$never-stored', { status: 'accepted', outlier: false })).toBe(false);
      });

      it('serves a room by depth range, deepest first, without rejected events unless asked', async () => {
        const room = '!depth:test';
        const statuses: EventStatus[] = ['accepted', 'accepted', 'rejected', 'accepted', 'soft_failed', 'accepted'];
        await store.events.appendMany(statuses.map((status, i) => eventFor(room, `$depth-${i + 1}`, i + 1, { status })));
        await store.events.append(eventFor('!other:test', '$other-3', 3));
        const range = await store.events.byDepthRange({ roomId: room, minDepth: 2, maxDepth: 5, limit: 10 });
        expect(range.map((e) => e.eventId)).toEqual(['$depth-5', '$depth-4', '$depth-2']);
        const all = await store.events.byDepthRange({ roomId: room, minDepth: 2, maxDepth: 5, limit: 10, excludeRejected: false });
        expect(all.map((e) => e.depth)).toEqual([5, 4, 3, 2]);
        const limited = await store.events.byDepthRange({ roomId: room, minDepth: 0, maxDepth: 100, limit: 2 });
        expect(limited.map((e) => e.eventId)).toEqual(['$depth-6', '$depth-5']);
      });
    });

    describe('pendingCommits', () => {
      const commit = (eventId: string, roomId: string, payload: Record<string, unknown> = { step: 1 }) => ({ eventId, roomId, payload, createdTs: 5 });

      it('keeps each commit under way once, lists them oldest first (per room or all) until removed', async () => {
        await store.pendingCommits.add(commit('$pc-2', '!pc-a:test', { pdu: { 'a.b': '$x' } }));
        await store.pendingCommits.add(commit('$pc-1', '!pc-b:test'));
        await store.pendingCommits.add(commit('$pc-2', '!pc-a:test', { other: true }));
        await store.pendingCommits.add(commit('$pc-3', '!pc-a:test'));
        expect(await store.pendingCommits.get('$pc-2')).toEqual(commit('$pc-2', '!pc-a:test', { pdu: { 'a.b': '$x' } }));
        expect((await store.pendingCommits.list('!pc-a:test')).map((c) => c.eventId)).toEqual(['$pc-2', '$pc-3']);
        expect((await store.pendingCommits.list()).filter((c) => c.eventId.startsWith('$pc-')).map((c) => c.eventId)).toEqual(['$pc-2', '$pc-1', '$pc-3']);
        await store.pendingCommits.remove('$pc-2', '!pc-a:test');
        await store.pendingCommits.remove('$pc-2');
        await store.pendingCommits.remove('$pc-1', '!pc-other:test');
        expect((await store.pendingCommits.list('!pc-b:test')).map((c) => c.eventId)).toEqual(['$pc-1']);
        await store.pendingCommits.remove('$pc-1');
        expect(await store.pendingCommits.get('$pc-2')).toBeUndefined();
        expect((await store.pendingCommits.list('!pc-a:test')).map((c) => c.eventId)).toEqual(['$pc-3']);
      });

      it('removes a run of one room\'s commits at once (issue 19), leaving other rooms\' and unknown IDs alone', async () => {
        for (const id of ['$run-1', '$run-2', '$run-3', '$run-4']) await store.pendingCommits.add(commit(id, '!run-a:test'));
        await store.pendingCommits.add(commit('$run-5', '!run-b:test'));
        await store.pendingCommits.removeAll('!run-a:test', ['$run-1', '$run-3', '$run-5', '$run-unknown']);
        expect((await store.pendingCommits.list('!run-a:test')).map((c) => c.eventId)).toEqual(['$run-2', '$run-4']);
        expect((await store.pendingCommits.list('!run-b:test')).map((c) => c.eventId)).toEqual(['$run-5']);
        await store.pendingCommits.removeAll('!run-a:test', ['$run-2', '$run-4', '$run-2']);
        await store.pendingCommits.removeAll('!run-a:test', []);
        expect(await store.pendingCommits.list('!run-a:test')).toEqual([]);
        await store.pendingCommits.add(commit('$run-6', '!run-a:test'));
        expect((await store.pendingCommits.list('!run-a:test')).map((c) => c.eventId)).toEqual(['$run-6']);
      });
    });

    describe('commits (issue 19: an event\'s commit writes handed over together)', () => {
      const room = '!cw:test';
      const journal = (eventId: string) => ({ commit: { eventId, roomId: room, payload: { step: 1 }, createdTs: 5 } });

      it('writes the journal record, state refs, event, room, extremities and current state; an event held already gets the outcome', async () => {
        const create = eventFor(room, '$cw-create', 1);
        expect(
          await store.commits.write({
            pending: journal('$cw-create'),
            stateRefs: { before: 'snap-0', after: 'snap-1' },
            event: create,
            room: { roomId: room, roomVersion: '10', creator: '@a:test', createdTs: 1 },
            forwardExtremities: { add: ['$cw-create'], remove: [] },
            currentStateId: 'snap-1',
          }),
        ).toEqual({ inserted: true });
        expect(await store.pendingCommits.get('$cw-create')).toMatchObject({ eventId: '$cw-create', roomId: room });
        expect(await store.state.getForEvent('$cw-create')).toEqual({ before: 'snap-0', after: 'snap-1' });
        expect(await store.events.get('$cw-create')).toMatchObject({ eventId: '$cw-create', status: 'accepted' });
        expect(await store.rooms.get(room)).toMatchObject({ roomVersion: '10', currentStateId: 'snap-1' });
        expect(await store.rooms.getForwardExtremities(room)).toEqual(['$cw-create']);

        await store.events.append(eventFor(room, '$cw-outlier', 2, { outlier: true }));
        const held = await store.commits.write({
          stateRefs: { before: 'snap-1', after: 'snap-1' },
          event: eventFor(room, '$cw-outlier', 2, { status: 'rejected', reason: 'no', outlier: false }),
        });
        expect(held).toEqual({ inserted: false });
        expect(await store.events.get('$cw-outlier')).toMatchObject({ status: 'rejected', reason: 'no', outlier: false });
        expect(await store.rooms.getForwardExtremities(room)).toEqual(['$cw-create']);
      });

      it('issue 19: a journal record gives back the PDU it was written with, for a new event (the embedded store keeps it once, in the event row) and for one held before', async () => {
        const fresh = eventFor(room, '$cw-pdu-new', 3);
        await store.commits.writeAll([
          { pending: { commit: { eventId: fresh.eventId, roomId: room, payload: { pdu: fresh.pdu, status: 'accepted', before: 's1' }, createdTs: 6 } }, stateRefs: { before: 's1', after: 's1' }, event: fresh },
        ]);
        const outlier = eventFor(room, '$cw-pdu-held', 4, { outlier: true });
        await store.events.append(outlier);
        const again = eventFor(room, '$cw-pdu-held', 4);
        await store.commits.write({ pending: { commit: { eventId: again.eventId, roomId: room, payload: { pdu: again.pdu, status: 'accepted' }, createdTs: 7 } }, stateRefs: { before: 's1', after: 's1' }, event: again });
        expect(await store.pendingCommits.get('$cw-pdu-new')).toEqual({ eventId: '$cw-pdu-new', roomId: room, payload: { pdu: fresh.pdu, status: 'accepted', before: 's1' }, createdTs: 6 });
        expect(await store.pendingCommits.get('$cw-pdu-held')).toEqual({ eventId: '$cw-pdu-held', roomId: room, payload: { pdu: again.pdu, status: 'accepted' }, createdTs: 7 });
        const listed = (await store.pendingCommits.list(room)).filter((c) => c.eventId.startsWith('$cw-pdu-'));
        expect(listed.map((c) => [c.eventId, c.payload.pdu])).toEqual([
          ['$cw-pdu-new', fresh.pdu],
          ['$cw-pdu-held', again.pdu],
        ]);
        await store.pendingCommits.removeAll(room, ['$cw-pdu-new', '$cw-pdu-held']);
      });

      it('a commit its room\'s fence refuses writes nothing', async () => {
        const fenced = '!cw-fenced:test';
        await store.pendingCommits.add({ eventId: '$cw-f0', roomId: fenced, payload: {}, createdTs: 5 }, { partition: 3, epoch: 7 });
        await expect(
          store.commits.write({
            pending: { commit: { eventId: '$cw-f1', roomId: fenced, payload: {}, createdTs: 5 }, fence: { partition: 3, epoch: 6 } },
            stateRefs: { before: 's', after: 's' },
            event: eventFor(fenced, '$cw-f1', 2),
            forwardExtremities: { add: ['$cw-f1'], remove: [] },
          }),
        ).rejects.toBeInstanceOf(CommitFencedError);
        expect(await store.pendingCommits.get('$cw-f1')).toBeUndefined();
        expect(await store.state.getForEvent('$cw-f1')).toBeUndefined();
        expect(await store.events.get('$cw-f1')).toBeUndefined();
        expect(await store.rooms.getForwardExtremities(fenced)).toEqual([]);
      });
    });

    describe('partialStateRooms', () => {
      const room = (roomId: string, startedTs: number, servers = ['a.test']) => ({ roomId, joinEventId: `$join-${roomId}`, serversInRoom: servers, resident: 'a.test', startedTs });

      it('keeps a room partial until finished, the latest record standing, oldest first', async () => {
        await store.partialStateRooms.begin(room('!ps-b:test', 20));
        await store.partialStateRooms.begin(room('!ps-a:test', 10));
        await store.partialStateRooms.begin(room('!ps-b:test', 30, ['a.test', 'b.test']));
        expect(await store.partialStateRooms.get('!ps-b:test')).toEqual(room('!ps-b:test', 30, ['a.test', 'b.test']));
        expect((await store.partialStateRooms.list()).filter((r) => r.roomId.startsWith('!ps-')).map((r) => r.roomId)).toEqual(['!ps-a:test', '!ps-b:test']);
        await store.partialStateRooms.finish('!ps-a:test');
        await store.partialStateRooms.finish('!ps-a:test');
        expect(await store.partialStateRooms.get('!ps-a:test')).toBeUndefined();
        expect((await store.partialStateRooms.list()).filter((r) => r.roomId.startsWith('!ps-')).map((r) => r.roomId)).toEqual(['!ps-b:test']);
      });
    });

    describe('redactions', () => {
      const claim = (redactionEventId: string, targetEventId: string, roomId = '!redact:test') => ({ redactionEventId, targetEventId, roomId });

      it('keeps claims on a target until it is stored, in the order added, each once', async () => {
        await store.redactions.addClaim(claim('$red-b', '$red-later'));
        await store.redactions.addClaim(claim('$red-a', '$red-later'));
        await store.redactions.addClaim(claim('$red-b', '$red-later'));
        expect(await store.redactions.claimsOn('$red-later')).toEqual([claim('$red-b', '$red-later'), claim('$red-a', '$red-later')]);
        expect(await store.redactions.claimsOn('$red-none')).toEqual([]);
        expect(await store.redactions.apply(claim('$red-b', '$red-later'))).toBe(false);
        expect(await store.events.get('$red-later')).toBeUndefined();
      });

      it('issue 19: names the targets of a room\'s claims that are not redacted, each once, and no other room\'s', async () => {
        const room = '!open-claims:test';
        await store.events.appendMany([eventFor(room, '$oc-held', 1), eventFor(room, '$oc-done', 2)]);
        await store.redactions.addClaim(claim('$oc-r1', '$oc-later', room));
        await store.redactions.addClaim(claim('$oc-r2', '$oc-later', room));
        await store.redactions.addClaim(claim('$oc-r3', '$oc-held', room));
        await store.redactions.addClaim(claim('$oc-r4', '$oc-done', room));
        await store.redactions.addClaim(claim('$oc-r5', '$oc-elsewhere', '!open-claims-other:test'));
        expect(await store.redactions.apply(claim('$oc-r4', '$oc-done', room))).toBe(true);
        expect((await store.redactions.openClaimTargets(room)).sort()).toEqual(['$oc-held', '$oc-later']);
        expect(await store.redactions.openClaimTargets('!open-claims-other:test')).toEqual(['$oc-elsewhere']);
        expect(await store.redactions.openClaimTargets('!open-claims-none:test')).toEqual([]);
      });

      it('applies the first redaction to a stored event; every read carries it and the stored PDU stays', async () => {
        const room = '!redact:test';
        const target = eventFor(room, '$red-1', 1);
        await store.events.appendMany([target, eventFor(room, '$red-2', 2)]);
        expect(await store.redactions.apply(claim('$red-x', '$red-1'))).toBe(true);
        expect(await store.redactions.apply(claim('$red-y', '$red-1'))).toBe(false);
        expect(await store.events.get('$red-1')).toEqual({ ...target, redactedBy: '$red-x' });
        expect((await store.events.getMany(['$red-1', '$red-2'])).get('$red-1')?.redactedBy).toBe('$red-x');
        expect((await store.events.get('$red-2'))?.redactedBy).toBeUndefined();
        const range = await store.events.byDepthRange({ roomId: room, minDepth: 0, maxDepth: 10, limit: 10 });
        expect(range.map((e) => [e.eventId, e.redactedBy])).toEqual([['$red-2', undefined], ['$red-1', '$red-x']]);
        expect((await store.events.byStatus(room, 'accepted', 10)).find((e) => e.eventId === '$red-1')?.redactedBy).toBe('$red-x');
        await store.events.setOutcome('$red-1', { status: 'accepted', outlier: false });
        expect((await store.events.get('$red-1'))?.redactedBy).toBe('$red-x');
      });
    });

    describe('state snapshots', () => {
      it('derives state from a base and a delta, sharing the base', async () => {
        const room = '!state:test';
        const base = await store.state.derive(room, null, [entry('m.room.create', '', '$c'), entry('m.room.member', '@a:x', '$ja')]);
        const next = await store.state.derive(room, base, [entry('m.room.member', '@b:x', '$jb'), entry('m.room.member', '@a:x', '$la')]);
        const third = await store.state.derive(room, next, [entry('m.room.member', '@b:x', null)]);
        expect(asObject(await store.state.load(base))).toEqual({ [stateTupleKey('m.room.create', '')]: '$c', [stateTupleKey('m.room.member', '@a:x')]: '$ja' });
        expect(asObject(await store.state.load(next))).toEqual({
          [stateTupleKey('m.room.create', '')]: '$c',
          [stateTupleKey('m.room.member', '@a:x')]: '$la',
          [stateTupleKey('m.room.member', '@b:x')]: '$jb',
        });
        expect(asObject(await store.state.load(third))).toEqual({ [stateTupleKey('m.room.create', '')]: '$c', [stateTupleKey('m.room.member', '@a:x')]: '$la' });
        expect(await store.state.load('ss_unknown')).toBeUndefined();
      });

      it('gives the same ID for the same derivation (idempotent) and the base ID for an empty delta', async () => {
        const room = '!stateid:test';
        const base = await store.state.derive(room, null, [entry('m.room.create', '', '$c')]);
        expect(await store.state.derive(room, null, [entry('m.room.create', '', '$c')])).toBe(base);
        const a = await store.state.derive(room, base, [entry('m.room.topic', '', '$t'), entry('m.room.name', '', '$n')]);
        const b = await store.state.derive(room, base, [entry('m.room.name', '', '$n'), entry('m.room.topic', '', '$t')]);
        expect(b).toBe(a);
        expect(await store.state.derive(room, a, [])).toBe(a);
      });

      it('loads correctly through chains longer than the cut-off', async () => {
        const room = '!chain:test';
        const model = new Map<string, string>();
        let id = await store.state.derive(room, null, [entry('m.room.create', '', '$c')]);
        model.set(stateTupleKey('m.room.create', ''), '$c');
        const ids: Array<[string, Record<string, string>]> = [];
        for (let i = 0; i < MAX_SNAPSHOT_CHAIN * 2 + 3; i++) {
          const user = `@u${i % 7}:x`;
          const removal = i % 5 === 4;
          const delta = [entry('m.room.member', user, removal ? null : `$m${i}`)];
          id = await store.state.derive(room, id, delta);
          if (removal) model.delete(stateTupleKey('m.room.member', user));
          else model.set(stateTupleKey('m.room.member', user), `$m${i}`);
          ids.push([id, asObject(model) as Record<string, string>]);
        }
        for (const [snapshotId, expected] of ids) expect(asObject(await store.state.load(snapshotId))).toEqual(expected);
      });

      it('saves a whole state as a delta against a base, and records state before/after events', async () => {
        const room = '!save:test';
        const before = new Map([
          [stateTupleKey('m.room.create', ''), '$c'],
          [stateTupleKey('m.room.member', '@a:x'), '$ja'],
        ]);
        const beforeId = await store.state.save(room, before);
        const after = new Map(before).set(stateTupleKey('m.room.member', '@b:x'), '$jb');
        after.delete(stateTupleKey('m.room.member', '@a:x'));
        const afterId = await store.state.save(room, after, beforeId);
        await store.state.setForEvent('$jb', { before: beforeId, after: afterId });
        await store.state.setForEvent('$jb', { before: beforeId, after: afterId });
        expect(await store.state.getForEvent('$jb')).toEqual({ before: beforeId, after: afterId });
        expect(asObject(await store.state.stateAfterEvent('$jb'))).toEqual(asObject(after));
        expect(asObject(await store.state.stateBeforeEvent('$jb'))).toEqual(asObject(before));
        expect(await store.state.stateAfterEvent('$nothing')).toBeUndefined();
      });
    });

    describe('rooms', () => {
      it('creates a room once, keeps the first record, and tracks current state', async () => {
        const created = await store.rooms.ensure({ roomId: '!room:test', roomVersion: '10', creator: '@a:x', createdTs: 5 });
        expect(created).toEqual({ roomId: '!room:test', roomVersion: '10', creator: '@a:x', createdTs: 5, currentStateId: null });
        expect(await store.rooms.ensure({ roomId: '!room:test', roomVersion: '11', creator: '@b:x', createdTs: 6 })).toEqual(created);
        await store.rooms.setCurrentState('!room:test', 'ss_x');
        expect((await store.rooms.get('!room:test'))?.currentStateId).toBe('ss_x');
        expect(await store.rooms.get('!no-room:test')).toBeUndefined();
      });

      it('moves forward extremities: adds before removes, repeats harmlessly', async () => {
        const room = '!fx:test';
        await store.rooms.updateForwardExtremities(room, { add: ['$a'], remove: [] });
        await store.rooms.updateForwardExtremities(room, { add: ['$b', '$c'], remove: [] });
        await store.rooms.updateForwardExtremities(room, { add: ['$d'], remove: ['$b', '$c'] });
        await store.rooms.updateForwardExtremities(room, { add: ['$d'], remove: ['$b', '$c'] });
        expect(await store.rooms.getForwardExtremities(room)).toEqual(['$a', '$d']);
        await store.rooms.updateForwardExtremities(room, { add: ['$a'], remove: ['$a'] });
        expect(await store.rooms.getForwardExtremities(room)).toEqual(['$a', '$d']);
        expect(await store.rooms.getForwardExtremities('!fx-empty:test')).toEqual([]);
      });

      it('keeps joined servers per room, and the rooms of a server', async () => {
        await store.rooms.setJoinedServers('!js1:test', ['a.test', 'b.test']);
        await store.rooms.setJoinedServers('!js2:test', ['b.test', 'c.test']);
        await store.rooms.setJoinedServers('!js1:test', ['a.test', 'c.test']);
        expect(await store.rooms.getJoinedServers('!js1:test')).toEqual(['a.test', 'c.test']);
        await store.rooms.updateJoinedServers('!js2:test', { add: ['d.test'], remove: ['c.test'] });
        expect(await store.rooms.getJoinedServers('!js2:test')).toEqual(['b.test', 'd.test']);
        expect(await store.rooms.roomsOfServer('c.test')).toEqual(['!js1:test']);
        expect(await store.rooms.roomsOfServer('b.test')).toEqual(['!js2:test']);
      });
    });

    describe('received transactions', () => {
      it('stores the first answer for (origin, txnId) and returns it for repeats', async () => {
        const first = { origin: 'dedupe.test', txnId: 't1', response: { pdus: { '$e': {} } }, receivedTs: 100 };
        expect(await store.receivedTransactions.get('dedupe.test', 't1')).toBeUndefined();
        expect(await store.receivedTransactions.record(first)).toEqual(first);
        expect(await store.receivedTransactions.record({ ...first, response: { pdus: {} }, receivedTs: 200 })).toEqual(first);
        expect(await store.receivedTransactions.get('dedupe.test', 't1')).toEqual(first);
        expect(await store.receivedTransactions.get('other.test', 't1')).toBeUndefined();
        await store.receivedTransactions.record({ origin: 'dedupe.test', txnId: 't2', response: {}, receivedTs: 300 });
        expect(await store.receivedTransactions.pruneBefore(200)).toBe(1);
        expect(await store.receivedTransactions.get('dedupe.test', 't1')).toBeUndefined();
        expect(await store.receivedTransactions.get('dedupe.test', 't2')).toBeDefined();
      });
    });

    describe('destinations', () => {
      it('keeps one transaction in flight, reuses its ID on retry, and moves the cursor only forward', async () => {
        const d = 'cursor.test';
        expect(await store.destinations.get(d)).toEqual({ destination: d, cursor: 0, inFlight: null, failures: 0, retryAt: null, lastSuccessTs: null });
        expect(await store.destinations.beginTransaction(d, { txnId: 'tx1', upTo: 10 })).toEqual({ txnId: 'tx1', upTo: 10 });
        expect(await store.destinations.beginTransaction(d, { txnId: 'tx2', upTo: 12 })).toEqual({ txnId: 'tx1', upTo: 10 });
        await store.destinations.completeTransaction(d, 'tx-other', 50);
        expect((await store.destinations.get(d)).cursor).toBe(0);
        await store.destinations.completeTransaction(d, 'tx1', 50);
        await store.destinations.completeTransaction(d, 'tx1', 60);
        expect(await store.destinations.get(d)).toMatchObject({ cursor: 10, inFlight: null, lastSuccessTs: 50 });
        await store.destinations.beginTransaction(d, { txnId: 'tx3', upTo: 4 });
        await store.destinations.completeTransaction(d, 'tx3', 70);
        expect((await store.destinations.get(d)).cursor).toBe(10);
      });

      it('counts failures, backs off, wakes, and resets on success', async () => {
        await store.destinations.recordFailure('bo-a.test', 1000);
        const twice = await store.destinations.recordFailure('bo-a.test', 3000);
        expect([twice.failures, twice.retryAt]).toEqual([2, 3000]);
        await store.destinations.recordFailure('bo-b.test', 2000);
        await store.destinations.recordFailure('bo-c.test', 9000);
        expect((await store.destinations.dueForRetry(5000, 10)).map((r) => r.destination).filter((n) => n.startsWith('bo-'))).toEqual(['bo-b.test', 'bo-a.test']);
        expect(await store.destinations.dueForRetry(1500, 10)).toEqual([]);
        await store.destinations.wake('bo-a.test');
        expect(await store.destinations.get('bo-a.test')).toMatchObject({ failures: 2, retryAt: null });
        await store.destinations.beginTransaction('bo-b.test', { txnId: 'x', upTo: 1 });
        await store.destinations.completeTransaction('bo-b.test', 'x', 7);
        expect(await store.destinations.get('bo-b.test')).toMatchObject({ failures: 0, retryAt: null, cursor: 1 });
      });
    });

    describe('egress queue', () => {
      it('appends in order per destination, dedupes by key, lists after a position and removes delivered items', async () => {
        const q = store.egressQueue;
        const a = await q.append('eq-a.test', '$1', { kind: 'pdu', eventId: '$1' }, 10);
        const b = await q.append('eq-a.test', '$2', { kind: 'pdu', eventId: '$2' }, 11);
        await q.append('eq-b.test', '$1', { kind: 'pdu', eventId: '$1' }, 12);
        expect(a.inserted && b.inserted && b.position > a.position).toBe(true);
        expect(await q.append('eq-a.test', '$1', { kind: 'pdu', eventId: '$1' }, 13)).toEqual({ position: a.position, inserted: false });
        expect((await q.list('eq-a.test', 0, 10)).map((i) => [i.key, i.item, i.enqueuedTs])).toEqual([
          ['$1', { kind: 'pdu', eventId: '$1' }, 10],
          ['$2', { kind: 'pdu', eventId: '$2' }, 11],
        ]);
        expect((await q.list('eq-a.test', a.position, 10)).map((i) => i.key)).toEqual(['$2']);
        expect(await q.count('eq-a.test', 0)).toBe(2);
        expect(await q.removeUpTo('eq-a.test', a.position)).toBe(1);
        const c = await q.append('eq-a.test', '$3', { kind: 'pdu' }, 14);
        expect(await q.remove('eq-a.test', [c.position])).toBe(1);
        expect((await q.list('eq-a.test', 0, 10)).map((i) => i.key)).toEqual(['$2']);
        expect((await q.destinationsWithWork()).filter((d) => d.startsWith('eq-'))).toEqual(['eq-a.test', 'eq-b.test']);
        await q.removeUpTo('eq-a.test', Number.MAX_SAFE_INTEGER);
        expect((await q.destinationsWithWork()).filter((d) => d.startsWith('eq-'))).toEqual(['eq-b.test']);
      });

      it('keeps the first saved body of a pending transaction until it is deleted', async () => {
        const q = store.egressQueue;
        const txn = { destination: 'eq-txn.test', txnId: 't1', upTo: 5, body: { pdus: [], edus: [{ edu_type: 'm.typing', content: {} }] }, createdTs: 1 };
        expect(await q.saveTransaction(txn)).toEqual(txn);
        expect(await q.saveTransaction({ ...txn, upTo: 9, body: {} })).toEqual(txn);
        expect(await q.getTransaction('eq-txn.test', 't1')).toEqual(txn);
        expect(await q.destinationsWithWork()).toContain('eq-txn.test');
        await q.deleteTransaction('eq-txn.test', 't1');
        expect(await q.getTransaction('eq-txn.test', 't1')).toBeUndefined();
        expect(await q.destinationsWithWork()).not.toContain('eq-txn.test');
      });

      it('begins a transaction with its body saved (not when another is in flight) and settles it: cursor past it, its items and body gone', async () => {
        const q = store.egressQueue;
        const first = await q.append('eq-begin.test', '$1', { kind: 'pdu', eventId: '$1' }, 1);
        const second = await q.append('eq-begin.test', '$2', { kind: 'pdu', eventId: '$2' }, 2);
        const txn = { destination: 'eq-begin.test', txnId: 't1', upTo: first.position, body: { pdus: [{ event_id: '$1' }] }, createdTs: 3 };
        expect(await q.beginTransaction(txn)).toEqual({ txnId: 't1', upTo: first.position });
        expect(await q.getTransaction('eq-begin.test', 't1')).toEqual(txn);
        expect(await q.beginTransaction({ ...txn, txnId: 't2', upTo: second.position })).toEqual({ txnId: 't1', upTo: first.position });
        expect(await q.getTransaction('eq-begin.test', 't2')).toBeUndefined();
        await q.settleTransaction('eq-begin.test', 't1', first.position, 4);
        expect(await store.destinations.get('eq-begin.test')).toMatchObject({ cursor: first.position, inFlight: null, lastSuccessTs: 4 });
        expect(await q.getTransaction('eq-begin.test', 't1')).toBeUndefined();
        expect((await q.list('eq-begin.test', 0, 10)).map((i) => i.key)).toEqual(['$2']);
      });

      it('removes the saved bodies of transactions not in flight (left by a settle cut short), never the one in flight', async () => {
        const q = store.egressQueue;
        const txn = (txnId: string) => ({ destination: 'eq-left.test', txnId, upTo: 1, body: { pdus: [txnId] }, createdTs: 1 });
        await q.saveTransaction(txn('settled'));
        expect(await q.removeSettledTransactions('eq-left.test')).toBe(1);
        expect(await q.destinationsWithWork()).not.toContain('eq-left.test');
        await q.beginTransaction(txn('t1'));
        await q.saveTransaction(txn('settled'));
        expect(await q.removeSettledTransactions('eq-left.test')).toBe(1);
        expect(await q.getTransaction('eq-left.test', 't1')).toEqual(txn('t1'));
        expect(await q.removeSettledTransactions('eq-left.test')).toBe(0);
        await q.settleTransaction('eq-left.test', 't1', 1, 2);
        expect(await q.removeSettledTransactions('eq-other.test')).toBe(0);
        expect(await q.destinationsWithWork()).not.toContain('eq-left.test');
      });
    });

    describe('server keys', () => {
      it('keeps own signing keys and marks retired ones', async () => {
        await store.serverKeys.putOwn({ keyId: 'ed25519:a', seed: 'c2VlZA', publicKey: 'cHVi', createdTs: 1, expiredTs: null });
        await store.serverKeys.putOwn({ keyId: 'ed25519:b', seed: 'c2VlZDI', publicKey: 'cHViMg', createdTs: 2, expiredTs: null });
        await store.serverKeys.putOwn({ keyId: 'ed25519:a', seed: 'c2VlZA', publicKey: 'cHVi', createdTs: 1, expiredTs: 10 });
        expect(await store.serverKeys.listOwn()).toEqual([
          { keyId: 'ed25519:a', seed: 'c2VlZA', publicKey: 'cHVi', createdTs: 1, expiredTs: 10 },
          { keyId: 'ed25519:b', seed: 'c2VlZDI', publicKey: 'cHViMg', createdTs: 2, expiredTs: null },
        ]);
      });

      it('serves cached remote keys only within their validity, newest fetch winning', async () => {
        const key = (over: Partial<RemoteServerKey>): RemoteServerKey => ({
          serverName: 'keys.test',
          keyId: 'ed25519:k1',
          publicKey: 'a2V5MQ',
          validUntilTs: 1000,
          expiredTs: null,
          fetchedTs: 10,
          ...over,
        });
        await store.serverKeys.putRemote([key({}), key({ keyId: 'ed25519:old', publicKey: 'b2xk', validUntilTs: 0, expiredTs: 500 })]);
        expect((await store.serverKeys.getRemote('keys.test', 'ed25519:k1', 1000))?.publicKey).toBe('a2V5MQ');
        expect(await store.serverKeys.getRemote('keys.test', 'ed25519:k1', 1001)).toBeUndefined();
        expect((await store.serverKeys.getRemote('keys.test', 'ed25519:old', 499))?.publicKey).toBe('b2xk');
        expect(await store.serverKeys.getRemote('keys.test', 'ed25519:old', 500)).toBeUndefined();
        await store.serverKeys.putRemote([key({ validUntilTs: 5000, fetchedTs: 20 })]);
        await store.serverKeys.putRemote([key({ validUntilTs: 2000, fetchedTs: 15 })]);
        expect((await store.serverKeys.getRemote('keys.test', 'ed25519:k1', 4000))?.validUntilTs).toBe(5000);
        expect((await store.serverKeys.listRemote('keys.test')).map((k) => k.keyId)).toEqual(['ed25519:k1', 'ed25519:old']);
        expect(await store.serverKeys.getRemote('nokeys.test', 'ed25519:k1', 0)).toBeUndefined();
      });
    });

    describe('application services', () => {
      const registration = (id: string, url: string): AppServiceRegistration => ({
        id,
        url,
        asToken: `as-${id}`,
        hsToken: `hs-${id}`,
        senderLocalpart: 'bridge',
        namespaces: { users: [{ exclusive: true, regex: '@rc_.*:gw\\.test' }], aliases: [], rooms: [] },
      });

      it('registers, replaces, lists and removes registrations', async () => {
        await store.appServices.register(registration('as-one', 'http://one'));
        await store.appServices.register(registration('as-two', 'http://two'));
        await store.appServices.register(registration('as-one', 'http://one-b'));
        expect((await store.appServices.get('as-one'))?.url).toBe('http://one-b');
        expect((await store.appServices.list()).filter((r) => r.id.startsWith('as-')).map((r) => r.id)).toEqual(['as-one', 'as-two']);
        await store.appServices.remove('as-two');
        expect(await store.appServices.get('as-two')).toBeUndefined();
      });

      it('numbers transactions, reuses the in-flight one on retry, and advances the stream position', async () => {
        expect(await store.appServices.getPosition('as-pos')).toEqual({ appServiceId: 'as-pos', streamPosition: 0, lastTxnId: 0, inFlight: null });
        expect(await store.appServices.beginTransaction('as-pos', 7)).toEqual({ txnId: '1', upTo: 7 });
        expect(await store.appServices.beginTransaction('as-pos', 9)).toEqual({ txnId: '1', upTo: 7 });
        await store.appServices.completeTransaction('as-pos', '1');
        await store.appServices.completeTransaction('as-pos', '1');
        expect(await store.appServices.getPosition('as-pos')).toEqual({ appServiceId: 'as-pos', streamPosition: 7, lastTxnId: 1, inFlight: null });
        expect(await store.appServices.beginTransaction('as-pos', 9)).toEqual({ txnId: '2', upTo: 9 });
      });
    });

    describe('media', () => {
      it('stores media metadata once and removes it', async () => {
        const media: MediaRecord = {
          origin: 'media.test',
          mediaId: 'abc',
          contentType: 'image/png',
          size: 42,
          uploadName: 'cat.png',
          sha256: 'aGFzaA',
          location: 'media/ab/c',
          createdTs: 1,
          uploader: '@a:media.test',
        };
        expect(await store.media.put(media)).toEqual(media);
        expect(await store.media.put({ ...media, size: 1 })).toEqual(media);
        expect(await store.media.get('media.test', 'abc')).toEqual(media);
        await store.media.remove('media.test', 'abc');
        expect(await store.media.get('media.test', 'abc')).toBeUndefined();
      });

      it('completes a pending upload once, and never a record that is not pending', async () => {
        const pending: MediaRecord = { origin: 'media.test', mediaId: 'pend', contentType: 'application/octet-stream', size: 0, uploadName: null, sha256: '', location: '', createdTs: 1, uploader: '@a:media.test', pendingUntilTs: 99 };
        await store.media.put(pending);
        const uploaded: MediaRecord = { ...pending, contentType: 'text/plain', size: 5, sha256: 'h', location: 'loc', pendingUntilTs: undefined };
        delete uploaded.pendingUntilTs;
        expect(await store.media.completePending(uploaded)).toBe(true);
        expect(await store.media.get('media.test', 'pend')).toEqual(uploaded);
        expect(await store.media.completePending({ ...uploaded, size: 6 })).toBe(false);
        expect(await store.media.get('media.test', 'pend')).toEqual(uploaded);
        expect(await store.media.completePending({ ...uploaded, mediaId: 'unknown' })).toBe(false);
        expect(await store.media.get('media.test', 'unknown')).toBeUndefined();
      });

      it('caches thumbnails per variant, first write wins', async () => {
        const thumbnail: MediaThumbnailRecord = { origin: 'media.test', mediaId: 'img', variant: '32x32-crop', contentType: 'image/png', size: 10, width: 32, height: 32, location: 't/1', createdTs: 1 };
        expect(await store.media.getThumbnail('media.test', 'img', '32x32-crop')).toBeUndefined();
        expect(await store.media.putThumbnail(thumbnail)).toEqual(thumbnail);
        expect(await store.media.putThumbnail({ ...thumbnail, size: 11 })).toEqual(thumbnail);
        expect(await store.media.getThumbnail('media.test', 'img', '32x32-crop')).toEqual(thumbnail);
        expect(await store.media.getThumbnail('media.test', 'img', '96x96-crop')).toBeUndefined();
        expect(await store.media.get('media.test', 'img')).toBeUndefined();
      });
    });

    describe('audit', () => {
      it('records every request and answers queries by peer, time, outcome and reason, newest first', async () => {
        const base: AuditEntry = { direction: 'in', origin: 'aud-r1.test', destination: 'gw.test', method: 'PUT', path: '/_matrix/federation/v1/send/1', ts: 1000, durationMs: 3.5, status: 200, outcome: 'ok' };
        const entries: AuditEntry[] = [
          base,
          { ...base, ts: 1001, status: 401, outcome: 'rejected', reason: 'M_UNAUTHORIZED', details: { header: 'bad signature' } },
          { ...base, origin: 'aud-r2.test', ts: 1002, txnId: 't9', pduCount: 2, eduCount: 1 },
          { ...base, direction: 'out', origin: 'gw.test', destination: 'aud-r1.test', ts: 1003, status: 0, outcome: 'error', reason: 'ECONNREFUSED' },
          { ...base, ts: 1004, status: 403, outcome: 'rejected', reason: 'M_FORBIDDEN' },
        ];
        const stored = [];
        for (const e of entries) stored.push(await store.audit.append(e));
        expect(new Set(stored.map((r) => r.id)).size).toBe(entries.length);
        const ids = (records: Array<{ ts: number }>) => records.map((r) => r.ts);
        expect(ids(await store.audit.query({ origin: 'aud-r1.test' }))).toEqual([1004, 1001, 1000]);
        expect(ids(await store.audit.query({ destination: 'aud-r1.test' }))).toEqual([1003]);
        expect(ids(await store.audit.query({ origin: 'aud-r1.test', outcome: 'rejected' }))).toEqual([1004, 1001]);
        const byReason = await store.audit.query({ reason: 'M_UNAUTHORIZED' });
        expect(byReason).toEqual([{ ...entries[1], id: stored[1].id }]);
        expect(ids(await store.audit.query({ direction: 'out', reason: 'ECONNREFUSED' }))).toEqual([1003]);
        expect(ids(await store.audit.query({ sinceTs: 1001, untilTs: 1004 }).then((r) => r.filter((x) => x.origin.startsWith('aud-') || x.destination.startsWith('aud-'))))).toEqual([1003, 1002, 1001]);
        expect(ids(await store.audit.query({ origin: 'aud-r1.test', limit: 1 }))).toEqual([1004]);
        const r2 = (await store.audit.query({ origin: 'aud-r2.test' }))[0];
        expect([r2.txnId, r2.pduCount, r2.eduCount, r2.reason]).toEqual(['t9', 2, 1, undefined]);
        expect(await store.audit.pruneBefore(1002)).toBe(2);
        expect(ids(await store.audit.query({ origin: 'aud-r1.test' }))).toEqual([1004]);
      });

      it('keeps policy decisions with room, event, sender, server, rule and policy version, queryable by room, server, rule and decision', async () => {
        const base: AuditEntry = { direction: 'in', origin: 'pol-asker.test', destination: 'gw.test', method: 'POST', path: '/_matrix/policy/v1/sign', ts: 5000, durationMs: 1, status: 200, outcome: 'ok' };
        const signed: AuditEntry = { ...base, decision: 'signed', roomId: '!pol-a:gw.test', eventId: '$e1', sender: '@u:pol-ok.test', server: 'pol-ok.test', rule: 'shared', policyVersion: '3:abcdef0123456789' };
        const refused: AuditEntry = { ...base, ts: 5001, status: 400, outcome: 'rejected', reason: 'M_FORBIDDEN', decision: 'refused', roomId: '!pol-b:gw.test', eventId: '$e2', sender: '@u:pol-bad.test', server: 'pol-bad.test', rule: 'deny-bad', policyVersion: '3:abcdef0123456789' };
        const stored = [await store.audit.append(signed), await store.audit.append(refused)];
        expect(await store.audit.query({ roomId: '!pol-a:gw.test' })).toEqual([{ ...signed, id: stored[0].id }]);
        expect(await store.audit.query({ server: 'pol-bad.test' })).toEqual([{ ...refused, id: stored[1].id }]);
        expect((await store.audit.query({ rule: 'deny-bad' })).map((r) => r.eventId)).toEqual(['$e2']);
        expect((await store.audit.query({ decision: 'signed', origin: 'pol-asker.test' })).map((r) => r.eventId)).toEqual(['$e1']);
      });
    });

    if (options.reopen) {
      const reopen = options.reopen;
      describe('durability', () => {
        it('keeps everything written after close and reopen', async () => {
          const room = '!durable:test';
          await store.events.append(eventFor(room, '$durable-1', 1, { status: 'rejected', reason: 'kept' }));
          const base = await store.state.derive(room, null, [entry('m.room.create', '', '$c')]);
          const next = await store.state.derive(room, base, [entry('m.room.member', '@a:x', '$j')]);
          await store.state.setForEvent('$durable-1', { before: base, after: next });
          await store.rooms.updateForwardExtremities(room, { add: ['$durable-1'], remove: [] });
          await store.destinations.recordFailure('durable.test', 77);
          await store.receivedTransactions.record({ origin: 'durable.test', txnId: 'd1', response: { ok: true }, receivedTs: 1 });
          await store.close();
          store = await reopen();
          expect(await store.events.get('$durable-1')).toMatchObject({ status: 'rejected', reason: 'kept' });
          expect(asObject(await store.state.stateAfterEvent('$durable-1'))).toEqual({
            [stateTupleKey('m.room.create', '')]: '$c',
            [stateTupleKey('m.room.member', '@a:x')]: '$j',
          });
          expect(await store.rooms.getForwardExtremities(room)).toEqual(['$durable-1']);
          expect(await store.destinations.get('durable.test')).toMatchObject({ failures: 1, retryAt: 77 });
          expect((await store.receivedTransactions.get('durable.test', 'd1'))?.response).toEqual({ ok: true });
        });
      });
    }
  });
}
