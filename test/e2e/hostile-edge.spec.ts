// Issue 11 at the whole gateway's edge (embedded): what the unit tests pin in service-kit, seen through the
// listeners a real deployment opens.
import { Agent, request } from 'undici';
import { createTestCa, startFedgate, type FedgateInstance } from '@fedgate/testing';

jest.setTimeout(120_000);

describe('hostile input at the gateway edge (issue 11)', () => {
  const ca = createTestCa('edge e2e CA');
  let instance: FedgateInstance;
  let agent: Agent;
  let federation: string;

  beforeAll(async () => {
    instance = await startFedgate({ shape: 'embedded', ca, name: 'edge', logLevel: 'warn' });
    agent = new Agent({ connect: { ca: ca.certPem } });
    federation = `https://localhost:${new URL(instance.federationUrl).port}`;
  });
  afterAll(async () => {
    await agent?.close();
    await instance?.destroy();
  });

  const call = async (base: string, method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const res = await request(base + path, { method: method as 'GET', body, headers: { 'content-type': 'application/json', ...headers }, dispatcher: agent });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> };
  };
  const asBridge = () => ({ authorization: `Bearer ${instance.bridge!.registration.as_token}` });

  it('client-server: floats, integers beyond 2^53 and deep content are 400 M_BAD_JSON before any command (defect 10)', async () => {
    const cs = instance.clientServerUrl;
    const badJson = { status: 400, body: expect.objectContaining({ errcode: 'M_BAD_JSON' }) };
    expect(await call(cs, 'POST', '/_matrix/client/v3/createRoom', '{"power_level_content_override":{"ban":1.5}}', asBridge())).toEqual(badJson);
    expect(await call(cs, 'POST', '/_matrix/client/v3/createRoom', '{"initial_state":[{"type":"m.room.topic","state_key":"","content":{"n":9007199254740993}}]}', asBridge())).toEqual(badJson);
    expect(await call(cs, 'PUT', '/_matrix/client/v3/rooms/!nowhere:edge.invalid/send/m.room.message/t1', '{"body":"x","n":-9007199254740992}', asBridge())).toEqual(badJson);
    const deep = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    expect(await call(cs, 'PUT', '/_matrix/client/v3/rooms/!nowhere:edge.invalid/state/m.room.topic/', deep, asBridge())).toEqual(badJson);
  });

  it('federation: deep JSON is refused before authentication, and only /send takes a large body (defect 1)', async () => {
    expect(await call(federation, 'PUT', '/_matrix/federation/v1/send/t1', '['.repeat(5 * 1024 * 1024))).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_BAD_JSON' }) });
    const body = JSON.stringify({ pad: 'x'.repeat(600 * 1024) });
    expect(await call(federation, 'PUT', '/_matrix/federation/v2/send_join/!r:edge.invalid/$e', body)).toEqual({ status: 413, body: expect.objectContaining({ errcode: 'M_TOO_LARGE' }) });
    expect(await call(federation, 'POST', '/_matrix/key/v2/query', body)).toEqual({ status: 413, body: expect.objectContaining({ errcode: 'M_TOO_LARGE' }) });
    // /send reads it, and then wants a signature.
    expect(await call(federation, 'PUT', '/_matrix/federation/v1/send/t1', body)).toEqual({ status: 401, body: expect.objectContaining({ errcode: 'M_UNAUTHORIZED' }) });
  });

  it('an overlong path parameter is a Matrix error on both listeners (defect 11)', async () => {
    const long = 'x'.repeat(2_000);
    expect(await call(federation, 'GET', `/_matrix/federation/v1/event/${long}`)).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_INVALID_PARAM' }) });
    expect(await call(instance.clientServerUrl, 'GET', `/_matrix/client/v3/rooms/${long}/state`, undefined, asBridge())).toEqual({ status: 400, body: expect.objectContaining({ errcode: 'M_INVALID_PARAM' }) });
  });
});
