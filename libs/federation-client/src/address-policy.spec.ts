import { AddressPolicy, isForbiddenAddress } from './address-policy';

describe('address policy', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a00:1', '::127.0.0.1',
    'not-an-address',
  ])('forbids %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
    expect(new AddressPolicy().isAllowed(address)).toBe(false);
  });

  it.each(['1.1.1.1', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])('allows the public %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
    expect(new AddressPolicy().isAllowed(address)).toBe(true);
  });

  // Defect 12 of issue 11: 6to4 (2002::/16), Teredo (2001::/32) and local-use NAT64 (64:ff9b:1::/48) tunnel
  // to addresses the IPv4 checks never see, so they are refused whole.
  it.each(['2002:7f00:1::1', '2002:a00:1::', '2002:808:808::1', '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '64:ff9b:1::a00:1', '64:ff9b:1:ffff::1'])(
    'forbids the tunnel address %s (defect 12)',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(true);
      expect(new AddressPolicy().isAllowed(address)).toBe(false);
    },
  );

  it('allowlists CIDRs, single addresses and hostnames', () => {
    const policy = new AddressPolicy({ allow: ['127.0.0.0/8', '::1', 'fd00::/8', 'internal.example.'] });
    expect(policy.isAllowed('127.0.0.1')).toBe(true);
    expect(policy.isAllowed('::ffff:127.0.0.1')).toBe(true);
    expect(policy.isAllowed('::1')).toBe(true);
    expect(policy.isAllowed('fd00::5')).toBe(true);
    expect(policy.isAllowed('10.0.0.1')).toBe(false);
    expect(policy.isAllowed('10.0.0.1', 'Internal.Example')).toBe(true);
    expect(policy.isAllowed('10.0.0.1', 'other.example')).toBe(false);
  });

  it('throws a typed refusal', () => {
    expect(() => new AddressPolicy().assertAllowed('10.0.0.1', 'evil.example')).toThrow(expect.objectContaining({ code: 'ADDRESS_REFUSED' }));
  });

  it('rejects a malformed CIDR in configuration', () => {
    expect(() => new AddressPolicy({ allow: ['10.0.0.0/33'] })).toThrow(/invalid CIDR/);
  });
});
