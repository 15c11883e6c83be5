// Server ACLs from the policy: in rooms this server is joined to whose room rule says `serverAcl: true`, the
// policy's server lists become the room's m.room.server_acl, sent by a local member with the power to, when
// the policy starts, when it changes, and on a slow sweep (rooms joined since). The client transaction ID is
// derived from the policy hash, so replicas doing the same work send one event.
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { CreateEventCommand, CreateEventReply } from '@fedgate/bus';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type ServerIdentity, type Store } from '@fedgate/platform';
import { canonicalJson, roomVersionRules, serverAclFromPolicy, type CompiledPolicy, type JsonObject } from '@fedgate/protocol';
import { powerLevelsOf, requiredPowerLevel, userPowerLevel, type RoomEvent } from '@fedgate/room-state';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import { parseStateTupleKey, stateTupleKey } from '@fedgate/store';
import type { Logger } from 'pino';
import { ActivePolicy } from './active-policy';

export type AclOutcome = { roomId: string; outcome: 'sent'; eventId: string; rule: string } | { roomId: string; outcome: 'unchanged' | 'skipped' | 'failed'; reason: string };

const ACL_SWEEP_MS = 10 * 60_000;

@Injectable()
export class PolicyServerAcls implements OnApplicationBootstrap, OnModuleDestroy {
  private timer?: NodeJS.Timeout;
  private running?: Promise<AclOutcome[]>;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly active: ActivePolicy,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.active.enabled) return;
    this.active.onApplied(() => void this.applyAll());
    this.timer = setInterval(() => void this.applyAll(), ACL_SWEEP_MS);
    this.timer.unref();
    void this.applyAll();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Brings every opted-in room's ACL in line with the policy in force; one pass at a time. */
  applyAll(): Promise<AclOutcome[]> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<AclOutcome[]> {
    const policy = this.active.policy;
    if (!policy || !policy.roomRules.some((r) => r.serverAcl)) return [];
    const outcomes: AclOutcome[] = [];
    for (const roomId of await this.store.rooms.roomsOfServer(this.identity.serverName)) {
      const outcome = await this.applyToRoom(policy, roomId).catch((error: unknown): AclOutcome => ({ roomId, outcome: 'failed', reason: (error as Error).message }));
      if (outcome.outcome === 'failed') this.logger.warn({ roomId, reason: outcome.reason }, 'policy server: could not update the server ACL of a room');
      if (outcome.outcome !== 'skipped') outcomes.push(outcome);
    }
    return outcomes;
  }

  private async applyToRoom(policy: CompiledPolicy, roomId: string): Promise<AclOutcome> {
    const plan = serverAclFromPolicy(policy, roomId, this.identity.serverName);
    if (!plan.acl) return { roomId, outcome: 'skipped', reason: plan.reason };
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return { roomId, outcome: 'skipped', reason: 'room without current state' };
    const state = await this.store.state.load(room.currentStateId);
    if (!state) return { roomId, outcome: 'skipped', reason: 'room without current state' };
    const rules = roomVersionRules(room.roomVersion);
    const eventAt = async (type: string, stateKey = '') => {
      const id = state.get(stateTupleKey(type, stateKey));
      const record = id === undefined ? undefined : await this.store.events.get(id);
      return record?.pdu as unknown as RoomEvent | undefined;
    };
    const current = await eventAt('m.room.server_acl');
    if (current && canonicalJson(current.content) === canonicalJson(plan.acl.content)) {
      await this.recordIfUnrecorded(current, state.get(stateTupleKey('m.room.server_acl', ''))!, roomId, plan.acl.rule, policy);
      return { roomId, outcome: 'unchanged', reason: 'the ACL already matches the policy' };
    }
    const [create, powerLevels] = [await eventAt('m.room.create'), await eventAt('m.room.power_levels')];
    const needed = requiredPowerLevel('m.room.server_acl', true, powerLevelsOf(powerLevels, rules));
    const sender = await this.localMemberWithPower(state, (userId) => userPowerLevel(userId, powerLevels, create, rules) >= needed);
    if (!sender) return { roomId, outcome: 'failed', reason: `no user of ours in the room has the power level ${needed} needed for m.room.server_acl` };
    const command: CreateEventCommand = { roomId, sender, type: 'm.room.server_acl', stateKey: '', content: plan.acl.content as unknown as JsonObject, txnId: `policy-acl-${policy.hash.slice(0, 32)}` };
    const reply: CreateEventReply = await this.bus.request(this.topology.createEvent.subjectFor(roomId), command);
    if (!reply.ok) return { roomId, outcome: 'failed', reason: `${reply.errcode}: ${reply.error}` };
    this.logger.info({ roomId, eventId: reply.eventId, rule: plan.acl.rule, policyVersion: policy.policyVersion, skipped: plan.acl.skipped }, 'policy server: server ACL updated from the policy');
    await this.record({ roomId, eventId: reply.eventId, sender, rule: plan.acl.rule, policy, details: { content: plan.acl.content as unknown as JsonObject, skipped: plan.acl.skipped } });
    return { roomId, outcome: 'sent', eventId: reply.eventId, rule: plan.acl.rule };
  }

  /**
   * The ACL event and its audit record are two writes: a crash between them leaves an ACL we sent without its
   * record. The next pass finds the room's ACL matching and writes the record then, marked recovered.
   */
  private async recordIfUnrecorded(current: RoomEvent, id: string, roomId: string, rule: string, policy: CompiledPolicy): Promise<void> {
    if (!current.sender.endsWith(`:${this.identity.serverName}`)) return;
    const recorded = await this.store.audit.query({ roomId, rule, reason: 'server_acl_from_policy', limit: 1000 });
    if (recorded.some((r) => r.eventId === id)) return;
    await this.record({ roomId, eventId: id, sender: current.sender, rule, policy, details: { content: current.content as JsonObject, recovered: true } });
  }

  private async record(entry: { roomId: string; eventId: string; sender: string; rule: string; policy: CompiledPolicy; details: JsonObject }): Promise<void> {
    const { roomId, eventId, sender, rule, policy, details } = entry;
    await this.store.audit
      .append({
        direction: 'out',
        origin: this.identity.serverName,
        destination: this.identity.serverName,
        method: 'SEND',
        path: 'm.room.server_acl',
        ts: Date.now(),
        durationMs: 0,
        status: 200,
        outcome: 'ok',
        reason: 'server_acl_from_policy',
        roomId,
        eventId,
        sender,
        rule,
        policyVersion: policy.policyVersion,
        details,
      })
      .catch((err: unknown) => this.logger.error({ err }, 'could not write the audit record of a server ACL update'));
  }

  private async localMemberWithPower(state: Map<string, string>, hasPower: (userId: string) => boolean): Promise<string | undefined> {
    const suffix = `:${this.identity.serverName}`;
    const candidates: Array<{ userId: string; eventId: string }> = [];
    for (const [key, eventId] of state) {
      const { type, stateKey } = parseStateTupleKey(key);
      if (type === 'm.room.member' && stateKey.endsWith(suffix) && hasPower(stateKey)) candidates.push({ userId: stateKey, eventId });
    }
    const events = await this.store.events.getMany(candidates.map((c) => c.eventId));
    return candidates.find((c) => (events.get(c.eventId)?.pdu.content as { membership?: unknown } | undefined)?.membership === 'join')?.userId;
  }
}
