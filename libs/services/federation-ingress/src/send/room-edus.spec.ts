// Issue 11 defect 6: room EDUs are checked per room — receipts against each room key's server ACL, typing and
// receipts only from servers in the room and for rooms this server knows — and what is left out is audited
// and counted.
import type { InboundEdu } from '@fedgate/bus';
import type { JsonObject } from '@fedgate/protocol';
import { auditOnceRecorded, INGRESS_NAME, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { RoomBuilder } from '../__fixtures__/room-builder';
import { IngressMetrics } from './ingress-metrics';

describe('room EDU checks at ingress', () => {
  let h: IngressHarness;
  let joined: RoomBuilder;
  let denied: RoomBuilder;
  let elsewhere: RoomBuilder;

  beforeAll(async () => {
    h = await startIngress();
    const remote = () => ({ serverName: h.remote.serverName, key: h.remote.key });
    joined = await RoomBuilder.create(h, '!edu-joined:ingress.test', 'shared');
    await joined.member(h.remote.user('alice'), 'join', remote());
    denied = await RoomBuilder.create(h, '!edu-acl:ingress.test', 'shared');
    await denied.member(h.remote.user('alice'), 'join', remote());
    await denied.setState('m.room.server_acl', '', { allow: ['*'], deny: [h.remote.serverName.split(':')[0]] });
    // The remote server has nobody here.
    elsewhere = await RoomBuilder.create(h, '!edu-elsewhere:ingress.test', 'shared');
  }, 60_000);
  afterAll(() => h.close());

  const send = (txnId: string, edus: JsonObject[]) =>
    h.remote.client().putJson<any>(INGRESS_NAME, `/_matrix/federation/v1/send/${txnId}`, { origin: h.remote.serverName, origin_server_ts: Date.now(), pdus: [], edus } as JsonObject);
  const published = (txnId: string) =>
    h.bus
      .readStream<InboundEdu>(h.topology.streams.inbound.name, h.topology.inboundEdu.all)
      .filter((m) => m.data.txnId === txnId)
      .map((m) => m.data);
  const receipt = (roomId: string, userId = h.remote.user('alice')) => ({ [roomId]: { 'm.read': { [userId]: { event_ids: ['$read'], data: { ts: 1 } } } } });
  const typing = (roomId: string, userId = h.remote.user('alice')) => ({ edu_type: 'm.typing', content: { room_id: roomId, user_id: userId, typing: true } });
  const dropped = (reason: string) => {
    const metrics = h.app.get(IngressMetrics);
    return metrics.count(metrics.edusDropped, { reason });
  };

  it('applies the server ACL per m.receipt room key: the denied room is left out, the others pass', async () => {
    await send('txn-receipt-acl', [{ edu_type: 'm.receipt', content: { ...receipt(joined.roomId), ...receipt(denied.roomId) } }]);
    const [edu] = published('txn-receipt-acl');
    expect(Object.keys(edu!.content)).toEqual([joined.roomId]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-receipt-acl');
    expect((record.details as any).refused).toContainEqual(expect.objectContaining({ kind: 'edu', eduType: 'm.receipt', roomId: denied.roomId, reason: 'server_acl', errcode: 'M_FORBIDDEN' }));
  });

  it('drops typing and receipts from a server with nobody in the room, and for rooms this server does not know', async () => {
    const before = { outside: await dropped('origin_not_in_room'), unknown: await dropped('unknown_room') };
    await send('txn-outsider', [typing(elsewhere.roomId), typing('!unknown:nowhere.test'), { edu_type: 'm.receipt', content: { ...receipt(elsewhere.roomId), ...receipt('!unknown:nowhere.test') } }]);
    expect(published('txn-outsider')).toEqual([]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-outsider');
    const reasons = ((record.details as any).refused as any[]).map((r) => [r.eduType, r.roomId, r.reason]);
    expect(reasons).toEqual(
      expect.arrayContaining([
        ['m.typing', elsewhere.roomId, 'origin_not_in_room'],
        ['m.typing', '!unknown:nowhere.test', 'unknown_room'],
        ['m.receipt', elsewhere.roomId, 'origin_not_in_room'],
        ['m.receipt', '!unknown:nowhere.test', 'unknown_room'],
      ]),
    );
    expect(await dropped('origin_not_in_room')).toBe(before.outside + 2);
    expect(await dropped('unknown_room')).toBe(before.unknown + 2);
  });

  it('drops typing for another server’s user and keeps only the origin’s own users in receipts', async () => {
    await send('txn-impostor', [typing(joined.roomId, h.other.user('olga')), { edu_type: 'm.receipt', content: { [joined.roomId]: { 'm.read': { [h.remote.user('alice')]: { event_ids: ['$a'] }, [h.other.user('olga')]: { event_ids: ['$b'] } } } } }]);
    const edus = published('txn-impostor');
    expect(edus.map((e) => e.eduType)).toEqual(['m.receipt']);
    expect(Object.keys((edus[0]!.content as any)[joined.roomId]['m.read'])).toEqual([h.remote.user('alice')]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-impostor');
    expect(((record.details as any).refused as any[]).map((r) => r.reason)).toEqual(['not_origin_user', 'not_origin_user']);
  });

  it('strict origin check: a typing or receipt user_id without the "@" sigil (`x:<origin>`, `<origin>`) is no user of the origin', async () => {
    const origin = h.remote.serverName;
    await send('txn-sigil', [typing(joined.roomId, `x:${origin}`), { edu_type: 'm.receipt', content: { [joined.roomId]: { 'm.read': { [`x:${origin}`]: { event_ids: ['$a'] }, [origin]: { event_ids: ['$b'] }, [h.remote.user('alice')]: { event_ids: ['$c'] } } } } }]);
    const edus = published('txn-sigil');
    expect(edus.map((e) => e.eduType)).toEqual(['m.receipt']);
    expect(Object.keys((edus[0]!.content as any)[joined.roomId]['m.read'])).toEqual([h.remote.user('alice')]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-sigil');
    expect(((record.details as any).refused as any[]).map((r) => [r.eduType, r.reason])).toEqual([
      ['m.typing', 'not_origin_user'],
      ['m.receipt', 'not_origin_user'],
    ]);
  });

  it('keeps only the origin\'s own users in m.presence, the rest left out with the reason audited', async () => {
    const origin = h.remote.serverName;
    const update = (userId: string) => ({ user_id: userId, presence: 'online', last_active_ago: 1 });
    await send('txn-presence', [{ edu_type: 'm.presence', content: { push: [update(h.remote.user('alice')), update(`x:${origin}`), update(h.other.user('olga')), 'nonsense'] } }]);
    const edus = published('txn-presence');
    expect(edus.map((e) => (e.content as any).push.map((u: any) => u.user_id))).toEqual([[h.remote.user('alice')]]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-presence');
    expect(((record.details as any).refused as any[]).map((r) => [r.eduType, r.reason])).toEqual([
      ['m.presence', 'not_origin_user'],
      ['m.presence', 'not_origin_user'],
      ['m.presence', 'malformed'],
    ]);
  });

  it('drops an m.presence that speaks for no user of the origin', async () => {
    await send('txn-presence-impostor', [{ edu_type: 'm.presence', content: { push: [{ user_id: h.other.user('olga'), presence: 'online' }] } }, { edu_type: 'm.presence', content: { push: 'x' } }]);
    expect(published('txn-presence-impostor')).toEqual([]);
  });

  it('still applies the ACL to any other EDU that names a room, counted under a fixed label', async () => {
    await send('txn-custom-acl', [{ edu_type: 'org.example.custom', content: { room_id: denied.roomId } }]);
    expect(published('txn-custom-acl')).toEqual([]);
    const metrics = h.app.get(IngressMetrics);
    expect(await metrics.count(metrics.edusDropped, { edu_type: 'other', reason: 'server_acl' })).toBe(1);
  });

  it('refuses malformed room EDUs with a reason rather than passing them on', async () => {
    await send('txn-malformed', [{ edu_type: 'm.typing', content: { room_id: 5 } }, { edu_type: 'm.receipt', content: { [joined.roomId]: 'nonsense' } }]);
    expect(published('txn-malformed')).toEqual([]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-malformed');
    expect(((record.details as any).refused as any[]).map((r) => r.reason)).toEqual(['malformed', 'malformed']);
  });

  it('passes typing from a server in the room', async () => {
    await send('txn-typing-ok', [typing(joined.roomId)]);
    expect(published('txn-typing-ok').map((e) => e.eduType)).toEqual(['m.typing']);
  });
});
