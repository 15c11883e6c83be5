import { compilePolicy, serverAclFromPolicy } from './index';

describe('server ACLs from the policy', () => {
  const policy = compilePolicy({
    version: 1,
    servers: [{ id: 'deny-spam', action: 'deny', servers: ['*.spam.example', 'evil.example:8448'] }],
    rooms: [
      { id: 'acl-rooms', rooms: ['!acl:*'], servers: { deny: ['blocked.example'] }, serverAcl: true },
      { id: 'partner-only', rooms: ['!partners:*'], servers: { allow: ['*.partner.example'] }, serverAcl: true },
      { id: 'no-acl', rooms: ['!plain:*'] },
    ],
  });

  it('turns the deny lists into an ACL that still allows everyone else, leaving out globs with ports', () => {
    const plan = serverAclFromPolicy(policy, '!acl:fg.example', 'fg.example:8448');
    expect(plan.acl).toEqual({ rule: 'acl-rooms', content: { allow: ['*'], deny: ['*.spam.example', 'blocked.example'], allow_ip_literals: true }, skipped: ['evil.example:8448'] });
  });

  it('turns a room allow list into the ACL allow list, always with this server in it', () => {
    expect(serverAclFromPolicy(policy, '!partners:fg.example', 'fg.example:8448').acl?.content.allow).toEqual(['*.partner.example', 'fg.example']);
  });

  it('makes no ACL for rooms that did not opt in', () => {
    expect(serverAclFromPolicy(policy, '!plain:fg.example', 'fg.example').acl).toBeUndefined();
  });

  it('refuses an ACL that would deny this server itself', () => {
    const plan = serverAclFromPolicy(policy, '!acl:x.spam.example', 'x.spam.example');
    expect(plan.acl).toBeUndefined();
    expect('reason' in plan && plan.reason).toContain('this server itself');
  });
});
