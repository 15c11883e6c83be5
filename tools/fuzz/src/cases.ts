// One fuzz request: which listener, method, path, headers and body. Routes are every federation and key
// route and the client-server routes a bridge uses (with the valid as_token), filled with hostile values.
import { hostileAuthorization, hostileBody, hostileId } from './hostile-inputs';
import type { Random } from './random';

export interface FuzzTarget {
  serverName: string;
  asToken: string;
  /** Localpart prefix of the bridge's namespace, e.g. `fuzzchat_`. */
  userPrefix: string;
}

export interface FuzzRequest {
  listener: 'federation' | 'client-server';
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** For the report: the route template and the kind of body. */
  route: string;
  bodyKind?: string;
}

type RouteCase = (random: Random, target: FuzzTarget) => { method: string; path: string; valid?: () => unknown };

const pdu = (random: Random, target: FuzzTarget) => ({
  type: random.pick(['m.room.message', 'm.room.member', 'm.room.create', 'm.room.power_levels', 'm.room.redaction']),
  room_id: `!${random.string(12)}:${target.serverName}`,
  sender: `@${random.string(6)}:forged.invalid`,
  state_key: random.chance(0.5) ? `@${random.string(6)}:forged.invalid` : undefined,
  origin_server_ts: Date.now(),
  depth: random.int(2 ** 31),
  prev_events: [`$${random.string(43)}`],
  auth_events: [`$${random.string(43)}`],
  content: { membership: 'join', body: random.string(20) },
  hashes: { sha256: random.string(43) },
  signatures: { 'forged.invalid': { 'ed25519:a': random.string(86) } },
});

const room = (random: Random, target: FuzzTarget) => hostileId(random, encodeURIComponent(`!${random.string(12)}:${target.serverName}`));
const event = (random: Random) => hostileId(random, encodeURIComponent(`$${random.string(43)}`));
const user = (random: Random, target: FuzzTarget) => hostileId(random, encodeURIComponent(`@${random.string(6)}:${target.serverName}`));

const FEDERATION: Record<string, RouteCase> = {
  'PUT /send/{txnId}': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v1/send/${hostileId(r, r.string(12))}`, valid: () => ({ origin: 'forged.invalid', origin_server_ts: Date.now(), pdus: Array.from({ length: r.pick([0, 1, 51]) }, () => pdu(r, t)), edus: r.chance(0.5) ? [{ edu_type: 'm.typing', content: { room_id: `!x:${t.serverName}`, user_id: '@a:forged.invalid', typing: true } }] : [] }) }),
  'GET /make_join': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/make_join/${room(r, t)}/${user(r, t)}?ver=${r.pick(['10', '1', 'x', ''])}` }),
  'GET /make_leave': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/make_leave/${room(r, t)}/${user(r, t)}` }),
  'GET /make_knock': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/make_knock/${room(r, t)}/${user(r, t)}?ver=10` }),
  'PUT /send_join v2': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v2/send_join/${room(r, t)}/${event(r)}`, valid: () => pdu(r, t) }),
  'PUT /send_join v1': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v1/send_join/${room(r, t)}/${event(r)}`, valid: () => pdu(r, t) }),
  'PUT /send_leave v2': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v2/send_leave/${room(r, t)}/${event(r)}`, valid: () => pdu(r, t) }),
  'PUT /send_knock': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v1/send_knock/${room(r, t)}/${event(r)}`, valid: () => pdu(r, t) }),
  'PUT /invite v2': (r, t) => ({ method: 'PUT', path: `/_matrix/federation/v2/invite/${room(r, t)}/${event(r)}`, valid: () => ({ room_version: r.pick(['10', '1', '999', 'x'.repeat(300)]), event: pdu(r, t), invite_room_state: [pdu(r, t)] }) }),
  'GET /event': (r) => ({ method: 'GET', path: `/_matrix/federation/v1/event/${event(r)}` }),
  'GET /state': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/state/${room(r, t)}?event_id=${event(r)}` }),
  'GET /state_ids': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/state_ids/${room(r, t)}?event_id=${event(r)}` }),
  'GET /event_auth': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/event_auth/${room(r, t)}/${event(r)}` }),
  'GET /backfill': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/backfill/${room(r, t)}?v=${event(r)}&limit=${r.pick(['10', '-1', '1e9', 'x', '99999999999999999999'])}` }),
  'POST /get_missing_events': (r, t) => ({ method: 'POST', path: `/_matrix/federation/v1/get_missing_events/${room(r, t)}`, valid: () => ({ earliest_events: [`$${r.string(43)}`], latest_events: [`$${r.string(43)}`], limit: r.pick([10, -1, 2 ** 53, 1e6]), min_depth: 0 }) }),
  'GET /query/profile': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/query/profile?user_id=${user(r, t)}&field=${r.pick(['displayname', 'avatar_url', 'x', ''])}` }),
  'GET /query/directory': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/query/directory?room_alias=${hostileId(r, encodeURIComponent(`#${r.string(5)}:${t.serverName}`))}` }),
  'GET /publicRooms': (r) => ({ method: 'GET', path: `/_matrix/federation/v1/publicRooms?limit=${r.pick(['5', '-1', 'x', '1e12'])}&since=${hostileId(r, 'abc')}` }),
  'POST /publicRooms': (r) => ({ method: 'POST', path: '/_matrix/federation/v1/publicRooms', valid: () => ({ limit: r.pick([5, -1, 2 ** 60]), filter: { generic_search_term: r.string(10) }, since: r.string(5) }) }),
  'GET /user/devices': (r, t) => ({ method: 'GET', path: `/_matrix/federation/v1/user/devices/${user(r, t)}` }),
  'GET /media/download': (r) => ({ method: 'GET', path: `/_matrix/federation/v1/media/download/${hostileId(r, r.string(24))}` }),
  'GET /media/thumbnail': (r) => ({ method: 'GET', path: `/_matrix/federation/v1/media/thumbnail/${hostileId(r, r.string(24))}?width=${r.pick(['32', '-1', '100000', 'x'])}&height=32&method=${r.pick(['crop', 'scale', 'x'])}` }),
  'GET /key/v2/server': () => ({ method: 'GET', path: '/_matrix/key/v2/server' }),
  'POST /key/v2/query': (r) => ({ method: 'POST', path: '/_matrix/key/v2/query', valid: () => ({ server_keys: Object.fromEntries(Array.from({ length: r.pick([1, 10, 100, 101, 1000]) }, () => [`${r.string(8)}.invalid`, { 'ed25519:a': { minimum_valid_until_ts: r.pick([0, -1, 2 ** 60]) } }])) }) }),
  'GET /key/v2/query/{server}': (r) => ({ method: 'GET', path: `/_matrix/key/v2/query/${hostileId(r, `${r.string(8)}.invalid`)}?minimum_valid_until_ts=${r.pick(['1', '-1', 'x', '1e99'])}` }),
  'GET /version': () => ({ method: 'GET', path: '/_matrix/federation/v1/version' }),
  'GET /.well-known/matrix/server': () => ({ method: 'GET', path: '/.well-known/matrix/server' }),
  'unknown route': (r) => ({ method: r.pick(['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PUT']), path: r.pick(['/_matrix/federation/v9/x', '/_matrix/federation/v1/send', '/', '/metrics', '/_matrix/client/v3/createRoom', `/${'a/'.repeat(500)}`, '/_matrix/federation/v1/send/../../key/v2/server']) }),
};

const localUser = (r: Random, t: FuzzTarget) => r.pick([`@${t.userPrefix}${r.string(6)}:${t.serverName}`, `@outsider${r.string(4)}:${t.serverName}`, `@${t.userPrefix}x:other.invalid`, 'not-a-user', '@' + 'a'.repeat(300) + ':' + t.serverName]);
const hostileContent = (r: Random) => r.pick([{ msgtype: 'm.text', body: 'hi' }, { n: 2 ** 53 }, { f: 1.5 }, { body: '\ud800' }, { nested: JSON.parse('['.repeat(120) + ']'.repeat(120)) }, { a: 'x'.repeat(70_000) }]);

const CLIENT: Record<string, RouteCase> = {
  'POST /createRoom': (r, t) => ({ method: 'POST', path: '/_matrix/client/v3/createRoom', valid: () => ({ preset: r.pick(['public_chat', 'private_chat', 'x']), room_version: r.pick(['10', '1', '999', undefined]), initial_state: [{ type: 'm.room.topic', state_key: '', content: hostileContent(r) }], power_level_content_override: r.pick([{ users_default: 2 ** 60 }, { ban: 1.5 }, {}, { users: { [localUser(r, t)]: 100 } }]), invite: [localUser(r, t)] }) }),
  'PUT /rooms/{room}/send/{type}/{txnId}': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/rooms/${room(r, t)}/send/${hostileId(r, 'm.room.message')}/${hostileId(r, r.string(10))}`, valid: () => hostileContent(r) }),
  'PUT /rooms/{room}/state/{type}/{key}': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/rooms/${room(r, t)}/state/${hostileId(r, 'm.room.name')}/${hostileId(r, '')}`, valid: () => hostileContent(r) }),
  'POST /join/{room}': (r, t) => ({ method: 'POST', path: `/_matrix/client/v3/join/${hostileId(r, encodeURIComponent(`#${r.string(5)}:${r.pick([t.serverName, 'forged.invalid', 'localhost:1'])}`))}?server_name=${r.pick(['localhost:1', 'forged.invalid', '[::1]:1'])}`, valid: () => ({}) }),
  'POST /rooms/{room}/leave': (r, t) => ({ method: 'POST', path: `/_matrix/client/v3/rooms/${room(r, t)}/leave`, valid: () => ({ reason: r.string(10) }) }),
  'POST /rooms/{room}/invite': (r, t) => ({ method: 'POST', path: `/_matrix/client/v3/rooms/${room(r, t)}/invite`, valid: () => ({ user_id: localUser(r, t) }) }),
  'GET /rooms/{room}/messages': (r, t) => ({ method: 'GET', path: `/_matrix/client/v3/rooms/${room(r, t)}/messages?dir=${r.pick(['b', 'f', 'x'])}&limit=${r.pick(['10', '-1', '1e9', 'x'])}&from=${hostileId(r, 's1')}` }),
  'GET /rooms/{room}/state': (r, t) => ({ method: 'GET', path: `/_matrix/client/v3/rooms/${room(r, t)}/state` }),
  'GET /rooms/{room}/event/{id}': (r, t) => ({ method: 'GET', path: `/_matrix/client/v3/rooms/${room(r, t)}/event/${event(r)}` }),
  'POST /register': (r, t) => ({ method: 'POST', path: '/_matrix/client/v3/register', valid: () => ({ type: r.pick(['m.login.application_service', 'm.login.dummy', 1]), username: r.pick([`${t.userPrefix}${r.string(6)}`, 'outsider', '../x', 'A', '', 'x'.repeat(300)]), inhibit_login: r.pick([true, false, 'yes']) }) }),
  'PUT /profile/{user}/displayname': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/profile/${user(r, t)}/displayname`, valid: () => ({ displayname: r.pick(['x', 'x'.repeat(70_000), 1, null]) }) }),
  'GET /profile/{user}': (r, t) => ({ method: 'GET', path: `/_matrix/client/v3/profile/${user(r, t)}` }),
  'PUT /rooms/{room}/typing/{user}': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/rooms/${room(r, t)}/typing/${user(r, t)}`, valid: () => ({ typing: r.pick([true, false, 'x']), timeout: r.pick([30000, -1, 2 ** 60, 1.5]) }) }),
  'POST /rooms/{room}/receipt': (r, t) => ({ method: 'POST', path: `/_matrix/client/v3/rooms/${room(r, t)}/receipt/${r.pick(['m.read', 'x'])}/${event(r)}`, valid: () => ({}) }),
  'PUT /presence/{user}/status': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/presence/${user(r, t)}/status`, valid: () => ({ presence: r.pick(['online', 'x', 1]) }) }),
  'PUT /directory/room/{alias}': (r, t) => ({ method: 'PUT', path: `/_matrix/client/v3/directory/room/${hostileId(r, encodeURIComponent(`#${t.userPrefix}${r.string(4)}:${t.serverName}`))}`, valid: () => ({ room_id: `!${r.string(8)}:${t.serverName}` }) }),
  'POST /media/upload': (r) => ({ method: 'POST', path: `/_matrix/media/v3/upload?filename=${hostileId(r, 'a.png')}` }),
  'GET /media/download': (r, t) => ({ method: 'GET', path: `/_matrix/client/v1/media/download/${r.pick([t.serverName, 'forged.invalid', 'localhost:1', '..', '%2e%2e'])}/${hostileId(r, r.string(24))}` }),
  'GET /media/thumbnail': (r, t) => ({ method: 'GET', path: `/_matrix/client/v1/media/thumbnail/${t.serverName}/${hostileId(r, r.string(24))}?width=${r.pick(['32', '-5', '99999', 'x'])}&height=32` }),
  'GET /whoami': () => ({ method: 'GET', path: '/_matrix/client/v3/account/whoami' }),
  'POST /appservice ping': (r) => ({ method: 'POST', path: `/_matrix/client/v1/appservice/${hostileId(r, 'x')}/ping`, valid: () => ({ transaction_id: r.string(4) }) }),
};

const FEDERATION_ROUTES = Object.keys(FEDERATION);
const CLIENT_ROUTES = Object.keys(CLIENT);

/** One hostile request; `big` allows a 10 MB body. */
export function nextRequest(random: Random, target: FuzzTarget, big: boolean): FuzzRequest {
  const federation = random.chance(0.6);
  const route = random.pick(federation ? FEDERATION_ROUTES : CLIENT_ROUTES);
  const made = (federation ? FEDERATION : CLIENT)[route]!(random, target);
  const headers: Record<string, string> = {};
  let body: string | Buffer | undefined;
  let bodyKind: string | undefined;
  if (made.method !== 'GET' && made.method !== 'HEAD') {
    const hostile = hostileBody(random, made.valid ?? (() => ({})), big);
    body = hostile.body;
    bodyKind = hostile.kind;
    const contentType = hostile.contentType ?? (random.chance(0.1) ? undefined : 'application/json');
    if (contentType) headers['content-type'] = contentType;
  }
  if (federation) {
    const authorization = hostileAuthorization(random, target.serverName);
    if (authorization !== undefined) headers.authorization = authorization;
  } else {
    const userId = random.chance(0.7) ? undefined : localUser(random, target);
    made.path += `${made.path.includes('?') ? '&' : '?'}${userId ? `user_id=${encodeURIComponent(userId)}` : ''}`;
    if (random.chance(0.95)) headers.authorization = `Bearer ${random.chance(0.95) ? target.asToken : random.string(20)}`;
  }
  if (random.chance(0.05)) headers['x-junk'] = 'y'.repeat(random.pick([100, 8_000]));
  return { listener: federation ? 'federation' : 'client-server', method: made.method, path: made.path, headers, body, route, bodyKind };
}
