// Issue 13: encryption EDUs speak only for the origin's own users. A remote server announcing devices or
// cross-signing keys for a user of another server, or a to-device message with another server's sender,
// is left out with its reason in the transaction's audit record; the origin's own pass to the bus.
import type { InboundEdu } from '@fedgate/bus';
import type { JsonObject } from '@fedgate/protocol';
import { auditOnceRecorded, INGRESS_NAME, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';

describe('encryption EDUs at ingress', () => {
  let h: IngressHarness;
  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  const send = (txnId: string, edus: JsonObject[]) =>
    h.remote.client().putJson<any>(INGRESS_NAME, `/_matrix/federation/v1/send/${txnId}`, { origin: h.remote.serverName, origin_server_ts: Date.now(), pdus: [], edus } as JsonObject);
  const published = (txnId: string) =>
    h.bus
      .readStream<InboundEdu>(h.topology.streams.inbound.name, h.topology.inboundEdu.all)
      .filter((m) => m.data.txnId === txnId)
      .map((m) => m.data);
  const deviceList = (userId: string) => ({ edu_type: 'm.device_list_update', content: { user_id: userId, device_id: 'D', stream_id: 2, prev_id: [1] } });
  const signingKeys = (userId: string) => ({ edu_type: 'm.signing_key_update', content: { user_id: userId, master_key: { user_id: userId, usage: ['master'], keys: {} } } });
  const toDevice = (sender: string, messageId: string) => ({
    edu_type: 'm.direct_to_device',
    content: { sender, type: 'm.room_key_request', message_id: messageId, messages: { '@bob:ingress.test': { '*': { action: 'request' } } } },
  });

  it('passes device list, cross-signing and to-device EDUs about the origin own users', async () => {
    const own = h.remote.user('alice');
    await send('txn-e2ee-own', [deviceList(own), signingKeys(own), toDevice(own, 'm1')]);
    expect(published('txn-e2ee-own').map((e) => e.eduType)).toEqual(['m.device_list_update', 'm.signing_key_update', 'm.direct_to_device']);
  });

  it('leaves out updates for users of another server and to-device messages from a non-owner origin, with the reason audited', async () => {
    const someoneElse = h.other.user('olga');
    await send('txn-e2ee-lies', [deviceList(someoneElse), signingKeys(someoneElse), toDevice(someoneElse, 'm2'), deviceList('@bob:ingress.test')]);
    expect(published('txn-e2ee-lies')).toEqual([]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-e2ee-lies');
    const reasons = ((record.details as any).refused as any[]).map((r) => [r.eduType, r.reason]);
    expect(reasons).toEqual([
      ['m.device_list_update', 'not_origin_user'],
      ['m.signing_key_update', 'not_origin_user'],
      ['m.direct_to_device', 'not_origin_user'],
      ['m.device_list_update', 'not_origin_user'],
    ]);
  });

  it('strict origin check: a user_id or sender without the "@" sigil (`x:<origin>`, `<origin>`) is no user of the origin', async () => {
    const origin = h.remote.serverName;
    await send('txn-e2ee-sigil', [deviceList(`x:${origin}`), signingKeys(origin), toDevice(`x:${origin}`, 'm9'), deviceList(`@x:evil.test:${origin}`)]);
    expect(published('txn-e2ee-sigil')).toEqual([]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-e2ee-sigil');
    expect(((record.details as any).refused as any[]).map((r) => r.reason)).toEqual(['not_origin_user', 'not_origin_user', 'not_origin_user', 'not_origin_user']);
  });

  it('leaves out malformed encryption EDUs', async () => {
    await send('txn-e2ee-malformed', [
      { edu_type: 'm.device_list_update', content: { user_id: h.remote.user('alice'), device_id: 'D', stream_id: 'two' } },
      { edu_type: 'm.direct_to_device', content: { sender: h.remote.user('alice'), type: 'x', messages: {} } },
    ]);
    expect(published('txn-e2ee-malformed')).toEqual([]);
    const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-e2ee-malformed');
    expect(((record.details as any).refused as any[]).map((r) => r.reason)).toEqual(['malformed', 'malformed']);
  });
});
