// Server ACLs (`m.room.server_acl`): which servers may take part in a room. Matching is on the host
// without its port, globs `*` and `?`, deny before allow, and no allow entry means nobody is allowed.
import { isIP } from 'node:net';

function hostOf(serverName: string): string {
  if (serverName.startsWith('[')) return serverName.slice(0, serverName.indexOf(']') + 1);
  const colon = serverName.lastIndexOf(':');
  return colon < 0 ? serverName : serverName.slice(0, colon);
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function matchesAny(host: string, globs: unknown): boolean {
  if (!Array.isArray(globs)) return false;
  return globs.some((glob) => typeof glob === 'string' && globToRegExp(glob).test(host));
}

/** Whether the ACL content lets `serverName` in; no ACL event (undefined content) allows everyone. */
export function serverAclAllows(content: Record<string, unknown> | undefined, serverName: string): boolean {
  if (!content) return true;
  const host = hostOf(serverName);
  const bare = host.replace(/^\[|\]$/g, '');
  if (content.allow_ip_literals === false && isIP(bare) !== 0) return false;
  if (matchesAny(host, content.deny)) return false;
  return matchesAny(host, content.allow);
}
