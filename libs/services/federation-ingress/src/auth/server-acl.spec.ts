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
});
