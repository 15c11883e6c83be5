import { FederationHttpError } from './errors';
import { FederationApi, pathSegment } from './federation-api';
import type { RequestOptions } from './federation-http-client';

interface Call {
  method: 'GET' | 'PUT' | 'POST';
  destination: string;
  path: string;
  body?: unknown;
  options: RequestOptions;
}

function fakeHttp(answer: (call: Call) => unknown) {
  const calls: Call[] = [];
  const respond = async (call: Call) => {
    calls.push(call);
    const body = answer(call);
    if (body instanceof Error) throw body;
    return { status: 200, body };
  };
  return {
    calls,
    http: {
      getJson: (destination: string, path: string, options: RequestOptions = {}) => respond({ method: 'GET', destination, path, options }),
      putJson: (destination: string, path: string, body: unknown, options: RequestOptions = {}) => respond({ method: 'PUT', destination, path, body, options }),
      postJson: (destination: string, path: string, body: unknown, options: RequestOptions = {}) => respond({ method: 'POST', destination, path, body, options }),
    } as never,
  };
}

describe('FederationApi', () => {
  it('percent-encodes path parameters, including ! : $ and slashes', () => {
    expect(pathSegment('!room:example.org')).toBe('%21room%3Aexample.org');
    expect(pathSegment('$a/b+c')).toBe('%24a%2Fb%2Bc');
  });

  it('make_join sends every supported version as a ver parameter', async () => {
    const { http, calls } = fakeHttp(() => ({ room_version: '10', event: { type: 'm.room.member' } }));
    const answer = await new FederationApi(http).makeJoin('remote.test', '!r:remote.test', '@u:here.test', ['9', '10']);
    expect(answer).toEqual({ room_version: '10', event: { type: 'm.room.member' } });
    expect(calls[0]).toMatchObject({ method: 'GET', path: '/_matrix/federation/v1/make_join/%21r%3Aremote.test/%40u%3Ahere.test', options: { query: { ver: ['9', '10'] } } });
  });

  it('send_join falls back to v1 on M_UNRECOGNIZED and unwraps [200, body]', async () => {
    const { http, calls } = fakeHttp((call) =>
      call.path.includes('/v2/') ? new FederationHttpError(404, { errcode: 'M_UNRECOGNIZED', error: 'no' }, 'remote.test') : [200, { state: [], auth_chain: [{ a: 1 }] }],
    );
    const answer = await new FederationApi(http).sendJoin('remote.test', '!r:remote.test', '$e', { type: 'm.room.member' });
    expect(answer).toEqual({ origin: undefined, state: [], auth_chain: [{ a: 1 }] });
    expect(calls.map((c) => c.path)).toEqual(['/_matrix/federation/v2/send_join/%21r%3Aremote.test/%24e', '/_matrix/federation/v1/send_join/%21r%3Aremote.test/%24e']);
  });

  it('sytest "Outbound federation can send invites via v1 API": invite falls back to v1 for room versions 1 and 2 only', async () => {
    const unrecognized = new FederationHttpError(404, { errcode: 'M_UNRECOGNIZED', error: 'no' }, 'remote.test');
    const { http, calls } = fakeHttp((call) => (call.path.includes('/v2/') ? unrecognized : [200, { event: { signed: true } }]));
    const request = { event: { type: 'm.room.member', event_id: '$e:here.test' }, room_version: '2', invite_room_state: [{ type: 'm.room.name' }] };
    expect(await new FederationApi(http).invite('remote.test', '!r:here.test', '$e:here.test', request)).toEqual({ signed: true });
    expect(calls.map((c) => c.path)).toEqual(['/_matrix/federation/v2/invite/%21r%3Ahere.test/%24e%3Ahere.test', '/_matrix/federation/v1/invite/%21r%3Ahere.test/%24e%3Ahere.test']);
    expect(calls[1]!.body).toEqual({ type: 'm.room.member', event_id: '$e:here.test', unsigned: { invite_room_state: [{ type: 'm.room.name' }] } });
    const v10 = fakeHttp(() => unrecognized);
    await expect(new FederationApi(v10.http).invite('remote.test', '!r:here.test', '$e', { ...request, room_version: '10' })).rejects.toMatchObject({ status: 404 });
    expect(v10.calls).toHaveLength(1);
  });

  it('send_join does not fall back on a refusal', async () => {
    const { http, calls } = fakeHttp(() => new FederationHttpError(403, { errcode: 'M_FORBIDDEN', error: 'banned' }, 'remote.test'));
    await expect(new FederationApi(http).sendJoin('remote.test', '!r:remote.test', '$e', {})).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(calls).toHaveLength(1);
  });

  it('refuses answers of the wrong shape with INVALID_RESPONSE', async () => {
    const { http } = fakeHttp(() => ({ pdu_ids: 'nope', auth_chain_ids: [] }));
    await expect(new FederationApi(http).stateIds('remote.test', '!r:remote.test', '$e')).rejects.toMatchObject({ code: 'INVALID_RESPONSE' });
  });

  it('get_missing_events posts the window and returns the events', async () => {
    const { http, calls } = fakeHttp(() => ({ events: [{ type: 'x' }] }));
    const events = await new FederationApi(http).getMissingEvents('remote.test', '!r:remote.test', { earliest_events: ['$a'], latest_events: ['$b'], limit: 10 });
    expect(events).toEqual([{ type: 'x' }]);
    expect(calls[0]).toMatchObject({ method: 'POST', body: { earliest_events: ['$a'], latest_events: ['$b'], limit: 10 } });
  });

  it('event answers exactly one PDU; backfill passes v and limit', async () => {
    const { http, calls } = fakeHttp((call) => (call.path.includes('/event/') ? { origin: 'r', origin_server_ts: 1, pdus: [{ e: 1 }] } : { origin: 'r', origin_server_ts: 1, pdus: [] }));
    const api = new FederationApi(http);
    expect(await api.event('remote.test', '$e')).toEqual({ e: 1 });
    await api.backfill('remote.test', '!r:remote.test', ['$x', '$y'], 5);
    expect(calls[1].options.query).toEqual({ v: ['$x', '$y'], limit: 5 });
  });

  it('invite v2 returns the signed event; send_knock the stripped state', async () => {
    const { http } = fakeHttp((call) => (call.path.includes('invite') ? { event: { signed: true } } : { knock_room_state: [{ type: 'm.room.name' }] }));
    const api = new FederationApi(http);
    expect(await api.invite('remote.test', '!r:x', '$e', { event: {}, room_version: '10' })).toEqual({ signed: true });
    expect(await api.sendKnock('remote.test', '!r:x', '$e', {})).toEqual({ knock_room_state: [{ type: 'm.room.name' }] });
  });
});
