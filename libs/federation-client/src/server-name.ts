import { isIPv4, isIPv6 } from 'node:net';
import { FederationClientError } from './errors';

// Private stand-in for the server-name grammar (appendices, "Server Name") until
// @fedgate/protocol exports its parser; only what discovery needs.

export type HostKind = 'ipv4' | 'ipv6' | 'dns';

export interface ParsedServerName {
  /** The name exactly as given, e.g. `example.org:8448` or `[::1]`; the Host header uses this form. */
  readonly serverName: string;
  /** The hostname without IPv6 brackets. */
  readonly host: string;
  readonly kind: HostKind;
  readonly port: number | undefined;
}

const DNS_NAME = /^[A-Za-z0-9.-]{1,255}$/;
const DOTTED_DIGITS = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const PORT = /^\d{1,5}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

export function parseServerName(serverName: string): ParsedServerName {
  const invalid = (why: string) => new FederationClientError('INVALID_SERVER_NAME', `invalid server name ${JSON.stringify(serverName)}: ${why}`);
  let hostPart: string;
  let portPart: string | undefined;
  let kind: HostKind;
  let host: string;

  if (serverName.startsWith('[')) {
    const close = serverName.indexOf(']');
    if (close < 0) throw invalid('unclosed IPv6 bracket');
    host = serverName.slice(1, close);
    const rest = serverName.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw invalid('junk after IPv6 literal');
    portPart = rest === '' ? undefined : rest.slice(1);
    if (!IPV6_CHARS.test(host) || !isIPv6(host)) throw invalid('bad IPv6 literal');
    kind = 'ipv6';
  } else {
    const colon = serverName.lastIndexOf(':');
    hostPart = colon < 0 ? serverName : serverName.slice(0, colon);
    portPart = colon < 0 ? undefined : serverName.slice(colon + 1);
    if (!DNS_NAME.test(hostPart)) throw invalid('bad hostname');
    host = hostPart;
    if (DOTTED_DIGITS.test(hostPart)) {
      if (!isIPv4(hostPart)) throw invalid('IPv4 octet out of range');
      kind = 'ipv4';
    } else {
      kind = 'dns';
    }
  }

  let port: number | undefined;
  if (portPart !== undefined) {
    if (!PORT.test(portPart)) throw invalid('bad port');
    port = Number(portPart);
    if (port < 1 || port > 65535) throw invalid('port out of range');
  }
  return { serverName, host, kind, port };
}

/** `host` ready for a URL or Host header: IPv6 gets its brackets back. */
export function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}
