import type { AppServiceRegistration } from './registration';
import { NamespaceMatcher } from './namespace-matcher';

/** The parts of an event interest depends on; PDUs and client-format events both fit. */
export interface InterestEvent {
  type: string;
  room_id: string;
  sender: string;
  state_key?: string;
}

/** What the homeserver knows about the event's room when it decides who to push it to. */
export interface InterestRoom {
  /** User IDs currently joined to the room. */
  joinedMembers: Iterable<string>;
  /** The room's aliases (canonical and alternative, and any published ones). */
  aliases?: Iterable<string>;
}

/** One registered application service: its registration plus compiled namespaces. */
export class ApplicationService {
  readonly senderUserId: string;
  private readonly users: NamespaceMatcher;
  private readonly aliases: NamespaceMatcher;
  private readonly rooms: NamespaceMatcher;

  constructor(
    readonly registration: AppServiceRegistration,
    /** This homeserver's server name: user namespaces only cover local users. */
    readonly serverName: string,
  ) {
    this.senderUserId = `@${registration.senderLocalpart}:${serverName}`;
    this.users = new NamespaceMatcher(registration.namespaces.users);
    this.aliases = new NamespaceMatcher(registration.namespaces.aliases);
    this.rooms = new NamespaceMatcher(registration.namespaces.rooms);
  }

  get id(): string {
    return this.registration.id;
  }

  /** The AS's sender user, or a local user in its user namespaces. */
  isInterestedInUser(userId: string): boolean {
    if (userId === this.senderUserId) return true;
    return this.isLocal(userId) && this.users.matches(userId);
  }

  /** Whether any alias may interest it: if not, a room's aliases need not be read to decide. */
  get hasAliasNamespaces(): boolean {
    return this.registration.namespaces.aliases.length > 0;
  }

  isInterestedInAlias(alias: string): boolean {
    return this.aliases.matches(alias);
  }

  isInterestedInRoomId(roomId: string): boolean {
    return this.rooms.matches(roomId);
  }

  /** Whether only this AS may create or manage the user (registration, profile). */
  claimsUserExclusively(userId: string): boolean {
    return userId === this.senderUserId || (this.isLocal(userId) && this.users.matchesExclusively(userId));
  }

  claimsAliasExclusively(alias: string): boolean {
    return this.aliases.matchesExclusively(alias);
  }

  claimsRoomIdExclusively(roomId: string): boolean {
    return this.rooms.matchesExclusively(roomId);
  }

  /**
   * Whether the event goes to this AS: its sender, the target of a membership event, the room ID,
   * any of the room's aliases, or any joined member is in the AS's namespaces.
   */
  isInterestedIn(event: InterestEvent, room: InterestRoom): boolean {
    if (this.isInterestedInUser(event.sender)) return true;
    if (event.type === 'm.room.member' && event.state_key !== undefined && this.isInterestedInUser(event.state_key)) {
      return true;
    }
    if (this.isInterestedInRoomId(event.room_id)) return true;
    for (const alias of room.aliases ?? []) if (this.isInterestedInAlias(alias)) return true;
    for (const member of room.joinedMembers) if (this.isInterestedInUser(member)) return true;
    return false;
  }

  private isLocal(userId: string): boolean {
    return userId.endsWith(`:${this.serverName}`);
  }
}
