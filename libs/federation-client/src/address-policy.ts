import { BlockList, isIP, isIPv4 } from 'node:net';
import { FederationClientError } from './errors';

/**
 * Addresses outgoing federation must not reach unless an operator allows them: loopback,
 * private, link-local, CGNAT, multicast, documentation and other special-purpose ranges.
 * Checked on the resolved address that is then connected to, so DNS cannot swap it later.
 */
const FORBIDDEN_IPV4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15',
  '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
];
const FORBIDDEN_IPV6 = [
  '::/96', // unspecified, loopback and the deprecated IPv4-compatible block
  '100::/64', '2001:db8::/32', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8',
  // Tunnels whose far end is an IPv4 address we would otherwise not judge: 6to4, Teredo, local-use NAT64.
  '2002::/16', '2001::/32', '64:ff9b:1::/48',
];

const forbidden = new BlockList();
for (const cidr of FORBIDDEN_IPV4) addCidr(forbidden, cidr);
for (const cidr of FORBIDDEN_IPV6) addCidr(forbidden, cidr);

export interface AddressPolicyConfig {
  /** CIDRs (`127.0.0.0/8`, `::1/128`), single addresses, or hostnames whose addresses are trusted as-is. */
  readonly allow?: readonly string[];
}

export class AddressPolicy {
  private readonly allowedRanges = new BlockList();
  private readonly allowedHosts = new Set<string>();

  constructor(config: AddressPolicyConfig = {}) {
    for (const entry of config.allow ?? []) {
      if (entry.includes('/')) addCidr(this.allowedRanges, entry);
      else if (isIP(entry)) this.allowedRanges.addAddress(entry, isIPv4(entry) ? 'ipv4' : 'ipv6');
      else this.allowedHosts.add(entry.toLowerCase().replace(/\.$/, ''));
    }
  }

  /** Whether connecting to `address` (found by looking up `hostname`) is permitted. */
  isAllowed(address: string, hostname?: string): boolean {
    if (hostname !== undefined && this.allowedHosts.has(hostname.toLowerCase().replace(/\.$/, ''))) return true;
    const normalised = unwrapEmbeddedIPv4(address);
    const family = isIPv4(normalised) ? 'ipv4' : 'ipv6';
    if (this.allowedRanges.check(normalised, family) || this.allowedRanges.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')) return true;
    return !isForbiddenAddress(normalised);
  }

  assertAllowed(address: string, hostname?: string): void {
    if (!this.isAllowed(address, hostname)) {
      const via = hostname && hostname !== address ? ` (${hostname})` : '';
      throw new FederationClientError('ADDRESS_REFUSED', `refusing to connect to ${address}${via}: address is not public and not allowlisted`);
    }
  }
}

export function isForbiddenAddress(address: string): boolean {
  const normalised = unwrapEmbeddedIPv4(address);
  const family = isIP(normalised);
  if (family === 0) return true;
  return forbidden.check(normalised, family === 4 ? 'ipv4' : 'ipv6');
}

/** IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are judged by their IPv4 part. */
function unwrapEmbeddedIPv4(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = expandIPv6(address);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0);
  if (!mapped && !nat64) return address;
  return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
}

function expandIPv6(address: string): number[] {
  let text = address.split('%')[0];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, -dotted[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((g) => parseInt(g, 16));
}

function addCidr(list: BlockList, cidr: string): void {
  const [network, prefixText] = cidr.split('/');
  const family = isIP(network);
  const prefix = Number(prefixText);
  if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`invalid CIDR in address policy: ${cidr}`);
  }
  list.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
}
