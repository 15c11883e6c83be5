// `POST /rooms/{roomId}/upgrade`: a new room of the asked version replaces the old one, as the client-server
// spec's "Room Upgrades" says: the new create event names its predecessor (and copies `type`), transferable
// state is copied (with the spaces' links and the bans), local aliases move, the old room gets a tombstone
// and power levels that stop ordinary events and invites; local users who were in an invite-only old room
// are invited. Room version 12 targets follow its creator rules: the upgrading user and `additional_creators`
// are the creators, so none of them is listed in the new room's power levels.
//
// Many writes in two rooms: each step is a command with a transaction ID derived from (old room, version,
// step), so an upgrade cut short (crash, timeout) is finished by the same call again, which finds the steps
// already done and does the rest, ending in the same new room.
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { isSupportedRoomVersion, parseUserId, roomVersionRules, type JsonObject, type RoomVersionRules } from '@fedgate/protocol';
import { MatrixError, SERVICE_LOGGER } from '@fedgate/service-kit';
import { parseStateTupleKey, stateTupleKey, type EventRecord } from '@fedgate/store';
import { isObject, parsePowerLevelValue } from '@fedgate/room-state';
import type { Logger } from 'pino';
import type { Requester } from '../client-server/requester';
import { asObject, assertRoomId } from './room-actions';
import { RoomCommands } from './room-commands';
import { RoomView, type CurrentState } from './room-view';
import { hasStatePower } from './state-power';

/** State copied to the new room (the spec's list, plus the space links Synapse copies too). */
const TRANSFERABLE_TYPES = new Set([
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.space.child',
  'm.space.parent',
]);

/** A power level as `rules` read it (rooms v1-9 take integer strings and fractions), or `fallback` when they ignore it. */
const levelOf = (value: unknown, rules: RoomVersionRules, fallback: number) => parsePowerLevelValue(value, rules) ?? fallback;
const membershipOf = (record: EventRecord) => (record.pdu.content as { membership?: unknown }).membership;

export interface UpgradeRequest {
  newVersion: string;
  additionalCreators: string[];
}

export function parseUpgradeBody(body: unknown): UpgradeRequest {
  const fields = asObject(body ?? {});
  const newVersion = fields.new_version;
  if (typeof newVersion !== 'string') throw MatrixError.badJson('new_version is required and must be a string');
  if (!isSupportedRoomVersion(newVersion)) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${newVersion} is not supported`);
  const additional = fields.additional_creators ?? [];
  if (!Array.isArray(additional) || additional.some((u) => typeof u !== 'string')) throw MatrixError.badJson('additional_creators must be a list of user IDs');
  for (const userId of additional as string[]) {
    try {
      parseUserId(userId);
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId)} is not a valid user ID`);
    }
  }
  if (additional.length > 0 && !roomVersionRules(newVersion).additionalCreators) throw MatrixError.invalidParam(`Room version ${newVersion} has no additional creators`);
  return { newVersion, additionalCreators: [...new Set(additional as string[])] };
}

/** The creators of a room version with creator rules (12+): the create event's sender and its additional creators. */
function creatorsOf(state: CurrentState): string[] {
  const create = state.events.get(stateTupleKey('m.room.create', ''));
  if (!create || !roomVersionRules(state.room.roomVersion).additionalCreators) return [];
  const additional = (create.pdu.content as { additional_creators?: unknown }).additional_creators;
  return [create.pdu.sender, ...(Array.isArray(additional) ? additional.filter((u): u is string => typeof u === 'string') : [])];
}

function stateContent(state: CurrentState, type: string, stateKey = ''): Record<string, unknown> | undefined {
  return state.events.get(stateTupleKey(type, stateKey))?.pdu.content as Record<string, unknown> | undefined;
}

const LEVEL_FIELDS = ['users_default', 'events_default', 'state_default', 'ban', 'kick', 'redact', 'invite'];
const LEVEL_MAPS = ['users', 'events', 'notifications'];

/**
 * `pl` with every level as the old room's version reads it, as an integer (rooms v1-9 take strings and
 * fractions; v10 and later refuse them); a value the old version ignores is left out.
 */
function integerLevels(pl: Record<string, unknown>, rules: RoomVersionRules): Record<string, unknown> {
  const parsed = (value: unknown) => parsePowerLevelValue(value, rules);
  for (const field of LEVEL_FIELDS) {
    if (!(field in pl)) continue;
    const level = parsed(pl[field]);
    if (level === undefined) delete pl[field];
    else pl[field] = level;
  }
  for (const field of LEVEL_MAPS) {
    const map = pl[field];
    if (!isObject(map)) continue;
    pl[field] = Object.fromEntries(Object.entries(map).flatMap(([key, value]) => (parsed(value) === undefined ? [] : [[key, parsed(value)]])));
  }
  return pl;
}

@Injectable()
export class RoomUpgrades {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly commands: RoomCommands,
    private readonly view: RoomView,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  async upgrade(requester: Requester, oldRoomId: string, body: unknown): Promise<{ replacement_room: string }> {
    assertRoomId(oldRoomId);
    const request = parseUpgradeBody(body);
    const user = requester.userId;
    const old = await this.view.currentState(oldRoomId);
    const member = old?.events.get(stateTupleKey('m.room.member', user));
    // An unknown room answers as one the user is not in: the answer does not tell which rooms exist.
    if (!old || !member || membershipOf(member) !== 'join') throw MatrixError.forbidden(`${user} is not in room ${oldRoomId}`);
    if (!isSupportedRoomVersion(old.room.roomVersion) || !hasStatePower(old, user, 'm.room.tombstone')) throw MatrixError.forbidden(`${user} may not send m.room.tombstone in ${oldRoomId}, so may not upgrade it`);
    const txn = (step: string) => `upgrade/${oldRoomId}/${request.newVersion}/${step}`;
    const tombstone = stateContent(old, 'm.room.tombstone');
    const earlier = await this.store.clientTransactions.get(user, txn('create'));
    if (tombstone && typeof tombstone.replacement_room === 'string' && !earlier) {
      throw MatrixError.forbidden(`Room ${oldRoomId} has already been replaced by ${tombstone.replacement_room}`);
    }

    const newRules = roomVersionRules(request.newVersion);
    const createContent: Record<string, unknown> = { room_version: request.newVersion, predecessor: { room_id: oldRoomId, ...(await this.lastEventId(oldRoomId)) } };
    const oldCreate = stateContent(old, 'm.room.create') ?? {};
    if (typeof oldCreate.type === 'string') createContent.type = oldCreate.type;
    if (oldCreate['m.federate'] === false) createContent['m.federate'] = false;
    if (newRules.additionalCreators && request.additionalCreators.length > 0) createContent.additional_creators = request.additionalCreators.filter((u) => u !== user);
    const created = await this.commands.createEvent({ roomId: oldRoomId, sender: user, type: 'm.room.create', stateKey: '', content: createContent as JsonObject, txnId: txn('create') });
    const newRoomId = created.roomId;
    const send = async (roomId: string, type: string, stateKey: string, content: Record<string, unknown>, step: string) =>
      this.commands.createEvent({ roomId, sender: user, type, stateKey, content: content as JsonObject, txnId: txn(step) });

    const profile = await this.store.profiles.get(user);
    const join = await send(newRoomId, 'm.room.member', user, { membership: 'join', ...(profile?.displayname ? { displayname: profile.displayname } : {}), ...(profile?.avatarUrl ? { avatar_url: profile.avatarUrl } : {}) }, 'join');
    await this.store.memberships.set(user, newRoomId, 'join', join.eventId);

    const newCreators = newRules.additionalCreators ? [user, ...request.additionalCreators] : [];
    const finalPl = this.newPowerLevels(old, newCreators, newRules.additionalCreators);
    // The upgrading user needs enough power to copy the state; v12 creators have it without being listed.
    const initialPl = newRules.additionalCreators ? finalPl : withUserLevel(finalPl, user, neededLevel(finalPl, newRules), newRules);
    await send(newRoomId, 'm.room.power_levels', '', initialPl, 'power_levels');
    for (const [key, record] of old.events) {
      const { type, stateKey } = parseStateTupleKey(key);
      if (!TRANSFERABLE_TYPES.has(type)) continue;
      const content = record.redactedBy === undefined ? record.pdu.content : undefined;
      if (!content || Object.keys(content).length === 0) continue;
      await send(newRoomId, type, stateKey, content as Record<string, unknown>, `state/${type}/${stateKey}`);
    }
    for (const record of RoomView.members(old, 'ban')) await send(newRoomId, 'm.room.member', record.stateKey!, { membership: 'ban' }, `ban/${record.stateKey}`);
    if (initialPl !== finalPl) await send(newRoomId, 'm.room.power_levels', '', finalPl, 'power_levels/final');

    await send(oldRoomId, 'm.room.tombstone', '', { body: 'This room has been replaced', replacement_room: newRoomId }, 'tombstone');
    await this.moveAliases(old, newRoomId, send);
    await this.moveDirectoryEntry(oldRoomId, newRoomId, requester);
    await this.restrictOldRoom(old, send);
    await this.inviteLocalMembers(old, newRoomId, user, send);
    return { replacement_room: newRoomId };
  }

  /** The latest event of the old room: `predecessor.event_id` (deprecated from v12 but still to be set where possible). */
  private async lastEventId(roomId: string): Promise<{ event_id?: string }> {
    const records = await this.store.events.getMany(await this.store.rooms.getForwardExtremities(roomId));
    const latest = [...records.values()].sort((a, b) => b.depth - a.depth)[0];
    return latest ? { event_id: latest.eventId } : {};
  }

  private newPowerLevels(old: CurrentState, newCreators: string[], creatorRules: boolean): Record<string, unknown> {
    const pl = integerLevels(JSON.parse(JSON.stringify(stateContent(old, 'm.room.power_levels') ?? {})) as Record<string, unknown>, roomVersionRules(old.room.roomVersion));
    const users: Record<string, unknown> = isObject(pl.users) ? { ...pl.users } : {};
    // Creators of a v12 old room had unbounded power without an entry: in a room without creator rules they get 100.
    if (!creatorRules) for (const creator of creatorsOf(old)) users[creator] = Math.max(levelOf(users[creator], roomVersionRules(old.room.roomVersion), 0), 100);
    // v12: the creators must not be listed (the auth rules refuse it).
    for (const creator of newCreators) delete users[creator];
    pl.users = users;
    return pl;
  }

  private async moveAliases(old: CurrentState, newRoomId: string, send: SendState): Promise<void> {
    const oldRoomId = old.room.roomId;
    const canonical = stateContent(old, 'm.room.canonical_alias') ?? {};
    const named = [canonical.alias, ...(Array.isArray(canonical.alt_aliases) ? canonical.alt_aliases : [])].filter(
      (a): a is string => typeof a === 'string' && a.endsWith(`:${this.identity.serverName}`),
    );
    const records = await this.store.aliases.forRoom(oldRoomId);
    const moving = new Map(records.map((r) => [r.alias, r]));
    // An alias the canonical alias names but the store no longer has was being moved when an earlier attempt stopped.
    for (const alias of named) if (!moving.has(alias) && !(await this.store.aliases.get(alias))) moving.set(alias, { alias, roomId: oldRoomId, servers: [this.identity.serverName], creator: old.room.creator, createdTs: Date.now() });
    for (const record of moving.values()) {
      await this.store.aliases.remove(record.alias);
      await this.store.aliases.create({ ...record, roomId: newRoomId, createdTs: Date.now() });
    }
    // The old room's canonical alias no longer names the aliases that moved (best effort: the new room has them).
    if (named.length > 0) {
      const rest = { ...canonical };
      if (typeof rest.alias === 'string' && named.includes(rest.alias)) delete rest.alias;
      if (Array.isArray(rest.alt_aliases)) rest.alt_aliases = rest.alt_aliases.filter((a) => !named.includes(a as string));
      await this.bestEffort(`clearing the canonical alias of ${oldRoomId}`, () => send(oldRoomId, 'm.room.canonical_alias', '', rest, 'old/canonical_alias'));
    }
  }

  private async moveDirectoryEntry(oldRoomId: string, newRoomId: string, requester: Requester): Promise<void> {
    const entry = await this.store.roomDirectory.get(oldRoomId);
    if (entry?.visibility !== 'public') return;
    await this.store.roomDirectory.set({ roomId: newRoomId, visibility: 'public', appServiceId: entry.appServiceId ?? requester.service.id, updatedTs: Date.now() });
    await this.store.roomDirectory.set({ ...entry, visibility: 'private', updatedTs: Date.now() });
  }

  /** `events_default` and `invite` raised to the greater of 50 and `users_default + 1`, when the user may. */
  private async restrictOldRoom(old: CurrentState, send: SendState): Promise<void> {
    const pl = stateContent(old, 'm.room.power_levels');
    if (!pl) return;
    const rules = roomVersionRules(old.room.roomVersion);
    const eventsDefault = levelOf(pl.events_default, rules, 0);
    const invite = levelOf(pl.invite, rules, 0);
    const restricted = Math.max(50, levelOf(pl.users_default, rules, 0) + 1);
    if (eventsDefault >= restricted && invite >= restricted) return;
    const content = { ...pl, events_default: Math.max(eventsDefault, restricted), invite: Math.max(invite, restricted) };
    await this.bestEffort(`restricting the power levels of ${old.room.roomId}`, () => send(old.room.roomId, 'm.room.power_levels', '', content, 'old/power_levels'));
  }

  /** Local users joined to (or invited to) an old room one cannot join freely are invited to the new one. */
  private async inviteLocalMembers(old: CurrentState, newRoomId: string, user: string, send: SendState): Promise<void> {
    const joinRule = stateContent(old, 'm.room.join_rules')?.join_rule;
    if (joinRule === 'public') return;
    for (const record of [...RoomView.members(old, 'join'), ...RoomView.members(old, 'invite')]) {
      const invitee = record.stateKey!;
      if (invitee === user || !invitee.endsWith(`:${this.identity.serverName}`)) continue;
      await this.bestEffort(`inviting ${invitee} to ${newRoomId}`, async () => {
        const invited = await send(newRoomId, 'm.room.member', invitee, { membership: 'invite' }, `invite/${invitee}`);
        await this.store.memberships.set(invitee, newRoomId, 'invite', invited.eventId);
      });
    }
  }

  /** Steps the spec makes optional ("if possible"): a refusal is logged with the reason, the upgrade goes on. */
  private async bestEffort(what: string, step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (error) {
      if (!(error instanceof MatrixError) || error.status >= 500) throw error;
      this.logger.warn({ errcode: error.errcode, reason: error.message }, `room upgrade: ${what} was refused`);
    }
  }
}

type SendState = (roomId: string, type: string, stateKey: string, content: Record<string, unknown>, step: string) => Promise<{ eventId: string }>;

/** The level needed to send every state event the copy sends, and to change the power levels afterwards. */
function neededLevel(pl: Record<string, unknown>, rules: RoomVersionRules): number {
  const events = isObject(pl.events) ? Object.values(pl.events).map((v) => levelOf(v, rules, 0)) : [];
  return Math.max(100, levelOf(pl.state_default, rules, 50), levelOf(pl.ban, rules, 50), ...events);
}

function withUserLevel(pl: Record<string, unknown>, userId: string, level: number, rules: RoomVersionRules): Record<string, unknown> {
  const users = isObject(pl.users) ? pl.users : {};
  if (levelOf(users[userId], rules, levelOf(pl.users_default, rules, 0)) >= level) return pl;
  return { ...pl, users: { ...users, [userId]: level } };
}

