// Matrix globs (`*` any run of characters, `?` exactly one), matched in time linear in pattern × text:
// the policy comes from an operator, the text from any remote server, and no pattern may be made to
// backtrack exponentially (a regular expression built from `*a*a*a*` could).

export function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '?' || (c !== undefined && c !== '*' && c === text[t])) {
      p++;
      t++;
    } else if (c === '*') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** A list of globs, with the ones without wildcards looked up in a set. */
export class GlobList {
  private readonly exact = new Set<string>();
  private readonly wild: string[] = [];

  constructor(
    globs: readonly string[],
    private readonly caseInsensitive = false,
  ) {
    for (const raw of globs) {
      const glob = caseInsensitive ? raw.toLowerCase() : raw;
      if (/[*?]/.test(glob)) this.wild.push(glob);
      else this.exact.add(glob);
    }
  }

  get size(): number {
    return this.exact.size + this.wild.length;
  }

  /** The first glob matching `text`, if any. */
  match(text: string): string | undefined {
    const subject = this.caseInsensitive ? text.toLowerCase() : text;
    if (this.exact.has(subject)) return subject;
    return this.wild.find((glob) => globMatches(glob, subject));
  }
}

/** The host of a server name (`host[:port]`, IPv6 in brackets), without the port. */
export function hostOfServerName(serverName: string): string {
  if (serverName.startsWith('[')) {
    const end = serverName.indexOf(']');
    return end < 0 ? serverName : serverName.slice(0, end + 1);
  }
  const colon = serverName.lastIndexOf(':');
  return colon < 0 ? serverName : serverName.slice(0, colon);
}

/** Server names match a server glob by their full name or by their host alone (a port never escapes a deny). */
export function matchServer(list: GlobList, serverName: string): string | undefined {
  return list.match(serverName) ?? list.match(hostOfServerName(serverName));
}
