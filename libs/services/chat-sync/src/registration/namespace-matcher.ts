import type { NamespaceRule } from './registration';

/**
 * Namespace regexes match the whole identifier: `@_irc_.*` must not match `@x:y@_irc_a`, and
 * `@bot:example\.org` must not match `@bot:example.org.evil`. Registrations are written for
 * Python's `re`; no `u` flag so its lenient escapes (`\#`) still compile, and its named groups
 * `(?P<name>` become JavaScript's `(?<name>`.
 */
export function compileNamespaceRegex(regex: string): RegExp {
  return new RegExp(`^(?:${regex.replace(/\(\?P</g, '(?<')})$`);
}

export interface NamespaceMatch {
  matched: boolean;
  exclusive: boolean;
}

/** One namespace list (users, aliases or rooms) of one registration, compiled once. */
export class NamespaceMatcher {
  private readonly rules: { pattern: RegExp; exclusive: boolean }[];

  constructor(rules: readonly NamespaceRule[]) {
    this.rules = rules.map((rule) => ({ pattern: compileNamespaceRegex(rule.regex), exclusive: rule.exclusive }));
  }

  /** Whether any rule matches, and whether any matching rule is exclusive. */
  match(identifier: string): NamespaceMatch {
    let matched = false;
    let exclusive = false;
    for (const rule of this.rules) {
      if (rule.pattern.test(identifier)) {
        matched = true;
        exclusive ||= rule.exclusive;
      }
    }
    return { matched, exclusive };
  }

  matches(identifier: string): boolean {
    return this.rules.some((rule) => rule.pattern.test(identifier));
  }

  matchesExclusively(identifier: string): boolean {
    return this.rules.some((rule) => rule.exclusive && rule.pattern.test(identifier));
  }
}
