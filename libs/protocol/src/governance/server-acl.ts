// The policy's server lists as an `m.room.server_acl` content, for rooms whose room rule opts in
// (`serverAcl: true`). ACLs match hosts without ports, so globs naming a port cannot be expressed and are
// left out (and reported); our own server is never denied.
import { globMatches, hostOfServerName } from './glob';
import type { CompiledPolicy } from './policy';

export interface PolicyServerAcl {
  /** The room rule that opted the room in. */
  rule: string;
  content: { allow: string[]; deny: string[]; allow_ip_literals: boolean };
  /** Policy globs the ACL cannot express (they name a port). */
  skipped: string[];
}

export type ServerAclPlan = { acl: PolicyServerAcl } | { acl?: undefined; reason: string };

const uniq = (values: string[]) => [...new Set(values)];

/** The ACL the policy asks for in `roomId`, or why there is none. */
export function serverAclFromPolicy(policy: CompiledPolicy, roomId: string, ownServerName: string): ServerAclPlan {
  const rule = policy.roomRules.find((r) => r.serverAcl && r.rooms.match(roomId) !== undefined);
  if (!rule) return { reason: 'no room rule with serverAcl: true matches the room' };
  const roomDocument = policy.document.rooms!.find((r) => r.id === rule.id)!;
  const skipped: string[] = [];
  const expressible = (globs: string[]) =>
    globs.filter((glob) => {
      if (hostOfServerName(glob) !== glob) skipped.push(glob);
      return hostOfServerName(glob) === glob;
    });
  const globalDeny = (policy.document.servers ?? []).filter((r) => r.action === 'deny').flatMap((r) => r.servers);
  const globalAllow = (policy.document.servers ?? []).filter((r) => r.action === 'allow').flatMap((r) => r.servers);
  const deny = uniq(expressible([...globalDeny, ...(roomDocument.servers?.deny ?? [])]).map((g) => g.toLowerCase()));
  const ownHost = hostOfServerName(ownServerName).toLowerCase();
  const denyingUs = deny.find((glob) => globMatches(glob, ownHost));
  if (denyingUs !== undefined) return { reason: `the deny glob ${denyingUs} would deny this server itself` };
  let allow: string[];
  if (roomDocument.servers?.allow) allow = expressible(roomDocument.servers.allow);
  else if (policy.defaultAction === 'deny') allow = expressible(globalAllow);
  else allow = ['*'];
  allow = uniq(allow.map((g) => g.toLowerCase()));
  if (!allow.some((glob) => globMatches(glob, ownHost))) allow.push(ownHost);
  return { acl: { rule: rule.id, content: { allow, deny, allow_ip_literals: true }, skipped } };
}
