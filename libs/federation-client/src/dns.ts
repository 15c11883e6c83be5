import { promises as dns } from 'node:dns';
import { FederationClientError } from './errors';

export interface SrvRecord {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * The DNS the federation client needs. `resolveSrv` answers [] when the name has no SRV
 * records (NXDOMAIN / NODATA); other DNS failures throw.
 */
export interface DnsResolver {
  resolveSrv(name: string): Promise<SrvRecord[]>;
  lookup(hostname: string): Promise<ResolvedAddress[]>;
}

const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

function isNoRecords(error: unknown): boolean {
  return NO_RECORDS.has((error as { code?: string })?.code ?? '');
}

/** The operating system's resolver (getaddrinfo for addresses, so CNAMEs and /etc/hosts apply). */
export const systemDnsResolver: DnsResolver = {
  async resolveSrv(name) {
    try {
      return await dns.resolveSrv(name);
    } catch (error) {
      if (isNoRecords(error)) return [];
      throw new FederationClientError('DNS_FAILURE', `SRV lookup for ${name} failed`, { cause: error });
    }
  },
  async lookup(hostname) {
    try {
      const answers = await dns.lookup(hostname, { all: true, order: 'verbatim' });
      return answers.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
    } catch (error) {
      if (isNoRecords(error)) return [];
      throw new FederationClientError('DNS_FAILURE', `address lookup for ${hostname} failed`, { cause: error });
    }
  },
};
