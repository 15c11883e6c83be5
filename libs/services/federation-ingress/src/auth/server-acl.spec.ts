import { serverAclAllows } from './server-acl';

describe('serverAclAllows', () => {
  it('allows everyone without an ACL, nobody with an empty allow list', () => {
    expect(serverAclAllows(undefined, 'a.example')).toBe(true);
    expect(serverAclAllows({}, 'a.example')).toBe(false);
  });

  it('matches globs on the host without the port, deny before allow', () => {
    const acl = { allow: ['*.example', 'exact.org'], deny: ['bad.example'] };
    expect(serverAclAllows(acl, 'good.example:8448')).toBe(true);
    expect(serverAclAllows(acl, 'bad.example')).toBe(false);
    expect(serverAclAllows(acl, 'exact.org')).toBe(true);
    expect(serverAclAllows(acl, 'other.org')).toBe(false);
    expect(serverAclAllows({ allow: ['h?st.org'] }, 'HOST.org')).toBe(true);
  });

  it('refuses IP literals when allow_ip_literals is false', () => {
    const acl = { allow: ['*'], allow_ip_literals: false };
    expect(serverAclAllows(acl, '127.0.0.1:8448')).toBe(false);
    expect(serverAclAllows(acl, '[::1]:8448')).toBe(false);
    expect(serverAclAllows(acl, 'name.example')).toBe(true);
    expect(serverAclAllows({ allow: ['*'] }, '127.0.0.1')).toBe(true);
  });

  // The ACL is room state any member server can set: a glob that a regular expression would backtrack on for
  // ever must be matched like any other (it once stalled ingress: the globs were turned into regexes).
  it('matches a pathological glob from room state without backtracking (regression: ACL globs were regexes)', () => {
    const glob = `${'*a'.repeat(25)}*b`;
    const host = `${'a'.repeat(60)}.example`;
    expect(serverAclAllows({ allow: ['*'], deny: [glob] }, host)).toBe(true);
    expect(serverAclAllows({ allow: [glob] }, `${host}b`)).toBe(true);
  });

  it('matches hosts case-insensitively, a port never escaping a deny', () => {
    expect(serverAclAllows({ allow: ['*'], deny: ['EVIL.example'] }, 'evil.EXAMPLE:8448')).toBe(false);
    expect(serverAclAllows({ allow: ['[::1]'] }, '[::1]:8448')).toBe(true);
  });
});
