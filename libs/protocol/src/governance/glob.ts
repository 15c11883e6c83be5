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

/**
 * A list of globs. Those without wildcards, `*suffix` and `prefix*` (most server and domain globs) are looked up in
 * sets, one lookup per position of the text; only the others are matched one by one. So a list of thousands of
 * globs costs about the length of the text, not the number of globs.
 */
export class GlobList {
  private readonly exact = new Map<string, string>();
  private readonly suffixes = new Map<string, string>();
  private readonly prefixes = new Map<string, string>();
  private readonly wild: string[] = [];
  private readonly count: number;

  constructor(
    globs: readonly string[],
    private readonly caseInsensitive = false,
  ) {
    for (const raw of globs) {
      const glob = caseInsensitive ? raw.toLowerCase() : raw;
      if (!/[*?]/.test(glob)) setOnce(this.exact, glob, glob);
      else if (glob.startsWith('*') && !/[*?]/.test(glob.slice(1))) setOnce(this.suffixes, glob.slice(1), glob);
      else if (glob.endsWith('*') && !/[*?]/.test(glob.slice(0, -1))) setOnce(this.prefixes, glob.slice(0, -1), glob);
      else this.wild.push(glob);
    }
    this.count = globs.length;
  }

  get size(): number {
    return this.count;
  }

  /** The first glob matching `text` (exact ones first, then by shape, then in order), if any. */
  match(text: string): string | undefined {
    const subject = this.caseInsensitive ? text.toLowerCase() : text;
    const exact = this.exact.get(subject);
    if (exact !== undefined) return exact;
    if (this.suffixes.size > 0 || this.prefixes.size > 0) {
      for (let i = 0; i <= subject.length; i++) {
        const bySuffix = this.suffixes.get(subject.slice(i));
        if (bySuffix !== undefined) return bySuffix;
        const byPrefix = this.prefixes.get(subject.slice(0, i));
        if (byPrefix !== undefined) return byPrefix;
      }
    }
    return this.wild.find((glob) => globMatches(glob, subject));
  }
}

function setOnce(map: Map<string, string>, key: string, glob: string): void {
  if (!map.has(key)) map.set(key, glob);
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
