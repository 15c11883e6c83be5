// Server ACLs (`m.room.server_acl`): which servers may take part in a room. Matching is on the host
// without its port, case-insensitive globs `*` and `?`, deny before allow, and no allow entry means nobody
// is allowed. The globs come from room state any member server can set: they are matched by the policy
// engine's glob rule, linear in pattern × host, never as regular expressions (which could backtrack for ever).
import { isIP } from 'node:net';
import { globMatches, hostOfServerName } from '@fedgate/protocol';

function matchesAny(host: string, globs: unknown): boolean {
  if (!Array.isArray(globs)) return false;
  return globs.some((glob) => typeof glob === 'string' && globMatches(glob.toLowerCase(), host));
}

/** Whether the ACL content lets `serverName` in; no ACL event (undefined content) allows everyone. */
export function serverAclAllows(content: Record<string, unknown> | undefined, serverName: string): boolean {
  if (!content) return true;
  const host = hostOfServerName(serverName).toLowerCase();
  const bare = host.replace(/^\[|\]$/g, '');
  if (content.allow_ip_literals === false && isIP(bare) !== 0) return false;
  if (matchesAny(host, content.deny)) return false;
  return matchesAny(host, content.allow);
}
