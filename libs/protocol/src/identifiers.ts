// Identifier grammar (appendix "Identifier Grammar"): server names, user IDs, room IDs, event IDs, aliases.
import { ProtocolError } from './errors';
import type { RoomVersionRules } from './room-versions';

export class InvalidIdentifierError extends ProtocolError {
  readonly errcode = 'M_INVALID_PARAM';
  constructor(
    readonly kind: 'server_name' | 'user_id' | 'room_id' | 'event_id' | 'room_alias',
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid_${kind}`, `invalid ${kind.replace('_', ' ')} ${JSON.stringify(value)}: ${reason}`);
  }
}

/** Limit on user IDs, room IDs, aliases and event IDs, in UTF-8 bytes including sigil and domain. */
export const MAX_IDENTIFIER_BYTES = 255;

export interface ServerName {
  host: string;
  hostType: 'dns' | 'ipv4' | 'ipv6';
  port?: number;
}

const DNS_NAME = /^[A-Za-z0-9.-]{1,255}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const DOTTED_NUMBERS = /^[\d.]+$/;

export function parseServerName(value: string): ServerName {
  const fail = (reason: string) => new InvalidIdentifierError('server_name', value, reason);
  if (typeof value !== 'string' || value === '') throw fail('empty');
  let host: string;
  let rest: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) throw fail('unclosed IPv6 literal');
    host = value.slice(0, close + 1);
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(':');
    host = colon < 0 ? value : value.slice(0, colon);
    rest = colon < 0 ? '' : value.slice(colon);
  }
  let port: number | undefined;
  if (rest !== '') {
    if (!/^:\d{1,5}$/.test(rest)) throw fail('port must be 1 to 5 digits after ":"');
    port = Number(rest.slice(1));
    if (port > 65535) throw fail(`port ${port} is above 65535`);
  }
  if (host.startsWith('[')) {
    const address = host.slice(1, -1);
    if (!isIpv6Address(address)) throw fail('not a valid IPv6 literal');
    return { host, hostType: 'ipv6', port };
  }
  const quad = IPV4.exec(host);
  if (quad) {
    if (quad.slice(1).some((octet) => Number(octet) > 255)) throw fail('IPv4 octet above 255');
    return { host, hostType: 'ipv4', port };
  }
  if (DOTTED_NUMBERS.test(host)) throw fail('numeric host is not a dotted-quad IPv4 address');
  if (!DNS_NAME.test(host)) throw fail('hostname may hold only letters, digits, "-" and "."');
  return { host, hostType: 'dns', port };
}

export function isValidServerName(value: string): boolean {
  try {
    parseServerName(value);
    return true;
  } catch {
    return false;
  }
}

/** RFC 3513 §2.2 text forms: eight hex groups, one "::" allowed, optionally ending in a dotted quad. */
export function isIpv6Address(address: string): boolean {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(address)) return false;
  let groups = address.split(':');
  let words = 0;
  const last = groups[groups.length - 1];
  if (last.includes('.')) {
    const quad = IPV4.exec(last);
    if (!quad || quad.slice(1).some((o) => Number(o) > 255)) return false;
    groups = groups.slice(0, -1).concat(['0', '0']);
  }
  const doubleColon = address.indexOf('::');
  if (doubleColon >= 0) {
    if (address.indexOf('::', doubleColon + 1) >= 0) return false;
    const [head, tail] = groups.join(':').split('::');
    const headGroups = head === '' ? [] : head.split(':');
    const tailGroups = tail === '' ? [] : tail.split(':');
    if (![...headGroups, ...tailGroups].every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
    words = headGroups.length + tailGroups.length;
    return words <= 7;
  }
  return groups.length === 8 && groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * The length the 255 limit applies to: UTF-8 bytes, or code points where the room version's rules are lenient
 * (before v11; see `strictByteLimits`; the bytes are then checked by `byteLimitViolation`).
 */
function lengthUnit(rules?: Pick<RoomVersionRules, 'strictByteLimits'>): string {
  return rules && !rules.strictByteLimits ? 'code points' : 'bytes';
}

export function identifierLength(value: string, rules?: Pick<RoomVersionRules, 'strictByteLimits'>): number {
  return rules && !rules.strictByteLimits ? codePointCount(value) : utf8Length(value);
}

const HIGH_SURROGATE = /[\ud800-\udbff]/;

/**
 * `[...value].length` without the array (issue 19: several identifiers per received PDU): a surrogate pair is one
 * code point, a lone surrogate one as well.
 */
export function codePointCount(value: string): number {
  if (!HIGH_SURROGATE.test(value)) return value.length;
  let count = value.length;
  for (let i = 0; i < value.length - 1; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

export interface UserId {
  localpart: string;
  serverName: string;
  /** Localpart outside today's grammar (allowed for events received over federation). */
  historical: boolean;
}

const USER_LOCALPART = /^[a-z0-9._=\-/+]+$/;
// Historical: any non-surrogate code point except ":" and NUL, possibly empty.
const HISTORICAL_LOCALPART = /^[^:\u0000]*$/u;

export interface ParseUserIdOptions {
  /** Accept historical localparts, as events received over federation must. Default false. */
  allowHistorical?: boolean;
  /** The room version the ID is in: before v11 the length limit counts code points (see `identifierLength`). */
  rules?: RoomVersionRules;
}

export function parseUserId(value: string, options?: ParseUserIdOptions): UserId {
  const fail = (reason: string) => new InvalidIdentifierError('user_id', value, reason);
  if (typeof value !== 'string' || !value.startsWith('@')) throw fail('must start with "@"');
  if (identifierLength(value, options?.rules) > MAX_IDENTIFIER_BYTES) throw fail(`longer than ${MAX_IDENTIFIER_BYTES} ${lengthUnit(options?.rules)}`);
  const colon = value.indexOf(':');
  if (colon < 0) throw fail('no ":" before the server name');
  const localpart = value.slice(1, colon);
  const serverName = value.slice(colon + 1);
  if (!isValidServerName(serverName)) throw fail(`bad server name ${JSON.stringify(serverName)}`);
  if (USER_LOCALPART.test(localpart)) return { localpart, serverName, historical: false };
  if (!options?.allowHistorical) throw fail('localpart may hold only a-z, 0-9 and ._=-/+');
  if (!value.isWellFormed() || !HISTORICAL_LOCALPART.test(localpart)) throw fail('localpart holds NUL or a lone surrogate');
  return { localpart, serverName, historical: true };
}

export interface RoomId {
  opaqueId: string;
  /** Absent for room version 12+ IDs, which are the create event's hash. */
  serverName?: string;
}

const HASH_43_URL_SAFE = /^[A-Za-z0-9_-]{43}$/;
const HASH_43_STANDARD = /^[A-Za-z0-9+/]{43}$/;
const OPAQUE_LOCALPART = /^[^:\u0000]+$/u;

/** Parses a room ID. With room version rules, enforces that version's form (`!hash` from v12, `!opaque:server` before). */
export function parseRoomId(value: string, rules?: RoomVersionRules): RoomId {
  const fail = (reason: string) => new InvalidIdentifierError('room_id', value, reason);
  if (typeof value !== 'string' || !value.startsWith('!')) throw fail('must start with "!"');
  if (identifierLength(value, rules) > MAX_IDENTIFIER_BYTES) throw fail(`longer than ${MAX_IDENTIFIER_BYTES} ${lengthUnit(rules)}`);
  if (!value.isWellFormed()) throw fail('holds a lone surrogate');
  const colon = value.indexOf(':');
  if (colon < 0) {
    if (rules && !rules.roomIdFromCreateEvent) throw fail(`room version ${rules.id} room IDs need ":server"`);
    if (!HASH_43_URL_SAFE.test(value.slice(1))) throw fail('a room ID without a server must be a 43-character URL-safe base64 hash');
    return { opaqueId: value.slice(1) };
  }
  if (rules?.roomIdFromCreateEvent) throw fail(`room version ${rules.id} room IDs carry no server`);
  const opaqueId = value.slice(1, colon);
  const serverName = value.slice(colon + 1);
  if (!OPAQUE_LOCALPART.test(opaqueId)) throw fail('empty localpart or NUL in it');
  if (!isValidServerName(serverName)) throw fail(`bad server name ${JSON.stringify(serverName)}`);
  return { opaqueId, serverName };
}

export interface EventId {
  opaqueId: string;
  serverName?: string;
}

/** Parses an event ID, in the room version's format when rules are given (else any known format). */
export function parseEventId(value: string, rules?: RoomVersionRules): EventId {
  const fail = (reason: string) => new InvalidIdentifierError('event_id', value, reason);
  if (typeof value !== 'string' || !value.startsWith('$')) throw fail('must start with "$"');
  if (identifierLength(value, rules) > MAX_IDENTIFIER_BYTES) throw fail(`longer than ${MAX_IDENTIFIER_BYTES} ${lengthUnit(rules)}`);
  if (!value.isWellFormed()) throw fail('holds a lone surrogate');
  const body = value.slice(1);
  const format = rules?.eventIdFormat;
  if (format === 'base64' || (!format && HASH_43_STANDARD.test(body))) {
    if (!HASH_43_STANDARD.test(body)) throw fail('must be "$" and a 43-character base64 hash');
    return { opaqueId: body };
  }
  if (format === 'url-safe-base64' || (!format && HASH_43_URL_SAFE.test(body))) {
    if (!HASH_43_URL_SAFE.test(body)) throw fail('must be "$" and a 43-character URL-safe base64 hash');
    return { opaqueId: body };
  }
  const colon = body.indexOf(':');
  if (colon < 0) throw fail('must be "$opaque:server"');
  const opaqueId = body.slice(0, colon);
  const serverName = body.slice(colon + 1);
  if (!OPAQUE_LOCALPART.test(opaqueId)) throw fail('empty localpart or NUL in it');
  if (!isValidServerName(serverName)) throw fail(`bad server name ${JSON.stringify(serverName)}`);
  return { opaqueId, serverName };
}

export interface RoomAlias {
  localpart: string;
  serverName: string;
}

export function parseRoomAlias(value: string): RoomAlias {
  const fail = (reason: string) => new InvalidIdentifierError('room_alias', value, reason);
  if (typeof value !== 'string' || !value.startsWith('#')) throw fail('must start with "#"');
  if (utf8Length(value) > MAX_IDENTIFIER_BYTES) throw fail(`longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  if (!value.isWellFormed()) throw fail('holds a lone surrogate');
  const colon = value.indexOf(':');
  if (colon < 0) throw fail('no ":" before the server name');
  const localpart = value.slice(1, colon);
  const serverName = value.slice(colon + 1);
  if (localpart.includes('\u0000')) throw fail('NUL in localpart');
  if (!isValidServerName(serverName)) throw fail(`bad server name ${JSON.stringify(serverName)}`);
  return { localpart, serverName };
}

const PARSERS = { user_id: (v: string) => parseUserId(v, { allowHistorical: true }), room_id: parseRoomId, event_id: parseEventId, room_alias: parseRoomAlias };

/**
 * The server an identifier names, only when the value is that kind of identifier by the grammar (sigil required,
 * server name valid; historical user localparts allowed, as federation must); otherwise undefined. Origin checks
 * use this, never "whatever follows the first colon": `x:origin` or `origin` is no user of `origin`.
 */
export function serverNameOf(value: unknown, kind: keyof typeof PARSERS = 'user_id'): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return PARSERS[kind](value).serverName;
  } catch (error) {
    if (error instanceof InvalidIdentifierError) return undefined;
    throw error;
  }
}

/** Whether `value` is a user ID (by the grammar) of `serverName`. */
export function isUserOf(value: unknown, serverName: string): boolean {
  return serverNameOf(value, 'user_id') === serverName;
}
