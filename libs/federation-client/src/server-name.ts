import { isIPv6 } from 'node:net';
import { parseServerName as parseServerNameGrammar } from '@fedgate/protocol';
import { FederationClientError } from './errors';

export type HostKind = 'ipv4' | 'ipv6' | 'dns';

/** A server name as discovery needs it: grammar from @fedgate/protocol, brackets stripped, port 0 refused. */
export interface ParsedServerName {
  /** The name exactly as given, e.g. `example.org:8448` or `[::1]`; the Host header uses this form. */
  readonly serverName: string;
  /** The hostname without IPv6 brackets. */
  readonly host: string;
  readonly kind: HostKind;
  readonly port: number | undefined;
}

export function parseServerName(serverName: string): ParsedServerName {
  let parsed: ReturnType<typeof parseServerNameGrammar>;
  try {
    parsed = parseServerNameGrammar(serverName);
  } catch (error) {
    throw new FederationClientError('INVALID_SERVER_NAME', (error as Error).message, { cause: error });
  }
  if (parsed.port === 0) {
    throw new FederationClientError('INVALID_SERVER_NAME', `invalid server name ${JSON.stringify(serverName)}: port 0 cannot be connected to`);
  }
  const host = parsed.hostType === 'ipv6' ? parsed.host.slice(1, -1) : parsed.host;
  return { serverName, host, kind: parsed.hostType, port: parsed.port };
}

/** `host` ready for a URL or Host header: IPv6 gets its brackets back. */
export function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}
