import { timingSafeEqual, createHash } from 'node:crypto';
import type { AppServiceRegistration } from './registration';
import { ApplicationService, type InterestEvent, type InterestRoom } from './application-service';
import { RegistrationError, loadRegistrationFile } from './load-registration';
import { compileNamespaceRegex } from './namespace-matcher';
import { mayOverlap } from './namespace-overlap';

/** Why a service may not act as a user, when it may not. */
export type ActingRefusal = 'exclusive' | 'outside';

/** Every application service registered with this homeserver; IDs and both tokens are unique. */
export class ApplicationServiceRegistry {
  readonly services: readonly ApplicationService[];
  private readonly tokenDigests: { digest: Buffer; service: ApplicationService }[];

  constructor(registrations: readonly AppServiceRegistration[], serverName: string) {
    assertUnique(registrations);
    assertUnambiguous(registrations, serverName);
    this.services = registrations.map((registration) => new ApplicationService(registration, serverName));
    this.tokenDigests = this.services.map((service) => ({ digest: digest(service.registration.asToken), service }));
  }

  static async fromFiles(paths: readonly string[], serverName: string): Promise<ApplicationServiceRegistry> {
    const registrations = await Promise.all(paths.map((path) => loadRegistrationFile(path)));
    return new ApplicationServiceRegistry(registrations, serverName);
  }

  /**
   * The AS whose `as_token` this is. Compares fixed-length digests in constant time and always
   * looks at every registration, so timing says nothing about the token.
   */
  findByAsToken(token: string): ApplicationService | undefined {
    const candidate = digest(token);
    let found: ApplicationService | undefined;
    for (const entry of this.tokenDigests) {
      if (timingSafeEqual(entry.digest, candidate) && !found) found = entry.service;
    }
    return found;
  }

  findById(id: string): ApplicationService | undefined {
    return this.services.find((service) => service.id === id);
  }

  /** The services an event must be pushed to. */
  interestedIn(event: InterestEvent, room: InterestRoom): ApplicationService[] {
    const members = [...room.joinedMembers];
    const aliases = [...(room.aliases ?? [])];
    return this.services.filter((service) => service.isInterestedIn(event, { joinedMembers: members, aliases }));
  }

  /** The AS that owns the user ID exclusively, if any: nobody else may register or act as it. */
  exclusiveOwnerOfUser(userId: string): ApplicationService | undefined {
    return this.services.find((service) => service.claimsUserExclusively(userId));
  }

  /**
   * Whether `service` may act as (or manage) `userId`: the user is in its namespaces and no other
   * service claims it exclusively. An exclusive claim wins over any non-exclusive one (`@.*`).
   */
  actingRefusal(service: ApplicationService, userId: string): ActingRefusal | undefined {
    const owner = this.exclusiveOwnerOfUser(userId);
    if (owner && owner !== service) return 'exclusive';
    return service.isInterestedInUser(userId) ? undefined : 'outside';
  }

  exclusiveOwnerOfAlias(alias: string): ApplicationService | undefined {
    return this.services.find((service) => service.claimsAliasExclusively(alias));
  }

  /** Services to ask, in order, whether a user or alias exists before answering "not found". */
  servicesForUser(userId: string): ApplicationService[] {
    return this.services.filter((service) => service.isInterestedInUser(userId));
  }

  servicesForAlias(alias: string): ApplicationService[] {
    return this.services.filter((service) => service.isInterestedInAlias(alias));
  }
}

/**
 * Exclusive namespaces of two services that may share an identifier, or one service's exclusive
 * namespace covering another's sender, leave the owner undecided: refused at start, naming both.
 */
function assertUnambiguous(registrations: readonly AppServiceRegistration[], serverName: string): void {
  for (const [index, first] of registrations.entries()) {
    for (const second of registrations.slice(index + 1)) {
      for (const kind of ['users', 'aliases', 'rooms'] as const) {
        for (const a of first.namespaces[kind].filter((rule) => rule.exclusive)) {
          for (const b of second.namespaces[kind].filter((rule) => rule.exclusive)) {
            if (!mayOverlap(a.regex, b.regex)) continue;
            throw new RegistrationError(
              second.source,
              `namespaces.${kind}`,
              `exclusive regex ${JSON.stringify(b.regex)} may overlap the exclusive regex ${JSON.stringify(a.regex)} of ${first.source}; an identifier can have one exclusive owner only`,
            );
          }
        }
      }
      for (const [owner, other] of [
        [first, second],
        [second, first],
      ] as const) {
        const sender = `@${other.senderLocalpart}:${serverName}`;
        const claim = owner.namespaces.users.find((rule) => rule.exclusive && compileNamespaceRegex(rule.regex).test(sender));
        if (claim) {
          throw new RegistrationError(owner.source, 'namespaces.users', `exclusive regex ${JSON.stringify(claim.regex)} covers ${sender}, the sender of ${other.source}`);
        }
      }
    }
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function assertUnique(registrations: readonly AppServiceRegistration[]): void {
  const seen = new Map<string, AppServiceRegistration>();
  for (const registration of registrations) {
    const keys: [string, string][] = [
      ['id', `id:${registration.id}`],
      ['as_token', `token:${registration.asToken}`],
      ['hs_token', `hs:${registration.hsToken}`],
    ];
    for (const [field, key] of keys) {
      const earlier = seen.get(key);
      if (earlier) {
        throw new RegistrationError(registration.source, field, `is the same as in ${earlier.source}; each must be unique`);
      }
      seen.set(key, registration);
    }
  }
  // An as_token equal to another service's hs_token would let one side impersonate the other.
  const asTokens = new Map(registrations.map((r) => [r.asToken, r]));
  for (const registration of registrations) {
    const clash = asTokens.get(registration.hsToken);
    if (clash) {
      throw new RegistrationError(registration.source, 'hs_token', `equals the as_token of ${clash.source}`);
    }
  }
}
