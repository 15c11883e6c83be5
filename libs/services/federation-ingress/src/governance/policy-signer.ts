// Serving POST /_matrix/policy/v1/sign: only for rooms whose current m.room.policy names this server with our
// policy key and where a user of ours is joined; the event must be a valid PDU of that room, signed by its
// sender's server (whoever asks: servers re-ask for events they receive), and may not point at events of another
// room. Then the operator's policy decides, and a signature with ed25519:policy_server is the answer.
import { Inject, Injectable } from '@nestjs/common';
import { verifyRemoteEvents, type KeyRing } from '@fedgate/federation-client';
import { KEY_RING, SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { encodeUnpaddedBase64, evaluatePolicy, redactedSigningText, RateWindows, serverRuleFor, type JsonObject, type PolicyDecision } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { LRUCache } from 'lru-cache';
import type { PolicyAuditNotes } from '../federation-request';
import { RoomAccess } from '../auth/room-access';
import { RoomReads } from '../rooms/room-reads';
import { ActivePolicy } from './active-policy';
import { PolicyMetrics } from './policy-metrics';

const POLICY_KEY_ID = 'ed25519:policy_server';

export interface SignOutcome {
  /** The answer body (a signature) or the error to answer with. */
  result: { signatures: Record<string, Record<string, string>> } | { error: MatrixError };
  audit: PolicyAuditNotes;
}

/** The spec's answer when the policy server will not sign: 400 M_FORBIDDEN (403 is for a caller it will not serve). */
const refusal = (error: string) => new MatrixError(400, 'M_FORBIDDEN', error);

const serverOf = (userId: unknown): string | undefined => (typeof userId === 'string' && userId.includes(':') ? userId.slice(userId.indexOf(':') + 1) : undefined);

@Injectable()
export class PolicySigner {
  private readonly reads: RoomReads;
  // Made at the first request signed: lru-cache allocates its whole capacity at once (~4 MiB for these two), which
  // every gateway paid at start although being a policy server is off by default.
  private rates: RateWindows | undefined;
  /** Decisions by event and policy version: a server asking again (to check an event it received) gets the same answer and is not counted twice. */
  private decided: LRUCache<string, PolicyDecision> | undefined;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    private readonly active: ActivePolicy,
    private readonly metrics: PolicyMetrics,
    private readonly access: RoomAccess,
  ) {
    this.reads = new RoomReads(store);
  }

  async sign(origin: string, body: unknown): Promise<SignOutcome> {
    const policy = this.active.policy;
    const key = this.active.key;
    if (!this.active.enabled || !policy || !key) return { result: { error: MatrixError.unrecognized('This server is not a policy server') }, audit: { decision: 'refused', rule: 'not_protected' } };
    const refuse = (rule: string, error: MatrixError, audit: Partial<PolicyAuditNotes> = {}): SignOutcome => {
      this.metrics.decisions.inc({ rule, outcome: 'refuse' });
      return { result: { error }, audit: { decision: 'refused', rule, policyVersion: policy.policyVersion, server: origin, ...audit } };
    };
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return refuse('invalid_event', MatrixError.badJson('The body must be a PDU (a JSON object)'));
    const event = body as JsonObject;
    const roomId = typeof event.room_id === 'string' ? event.room_id : undefined;
    const sender = typeof event.sender === 'string' ? event.sender : undefined;
    const eventServer = serverOf(sender);
    const about = { ...(roomId ? { roomId } : {}), ...(sender ? { sender } : {}), ...(eventServer ? { server: eventServer } : {}) };
    if (event.type === 'm.room.policy' && event.state_key === '') {
      return refuse('invalid_event', MatrixError.badJson('m.room.policy state events with an empty state_key are not signed by the policy server'), about);
    }
    // A server the policy denies may not ask at all (the spec's 403 for a server ACL'd from the endpoint).
    const originRule = serverRuleFor(policy, origin);
    if (originRule?.action === 'deny') {
      return refuse(originRule.rule, MatrixError.forbidden(`Your server is not allowed to request a signature${originRule.reason ? `: ${originRule.reason}` : ''}`), about);
    }
    if (!roomId) return refuse('invalid_event', MatrixError.badJson('The event has no room_id'), about);
    const version = await this.protectedRoomVersion(roomId, key.publicKeyBase64);
    if (!version) return refuse('not_protected', MatrixError.notFound('The room is not known or is not protected by this policy server'), about);
    // The spec lets a policy server apply the room's server ACL to the asker (403); we track the room, so we do.
    if (!(await this.access.aclAllows(roomId, origin))) return refuse('server_acl', MatrixError.forbidden(`Server ${origin} is denied by the room's server ACL`), about);

    const [checked] = await verifyRemoteEvents(this.keyRing, [event], { roomVersion: version, roomId });
    if (!checked?.ok) {
      const forged = checked?.problem === 'signature';
      return refuse(forged ? 'unsigned_event' : 'invalid_event', forged ? refusal(`The event is not signed by its sender's server: ${checked.reason}`) : MatrixError.badJson(checked?.reason ?? 'invalid event'), {
        ...about,
        ...(checked?.eventId ? { eventId: checked.eventId } : {}),
      });
    }
    const eventId = checked.eventId;
    if (checked.redacted) return refuse('invalid_event', MatrixError.badJson('The event does not match its content hash'), { ...about, eventId });
    const references = [...(checked.pdu.prev_events as string[]), ...(checked.pdu.auth_events as string[])].filter((id) => typeof id === 'string');
    const known = await this.store.events.getMany(references);
    const foreign = references.find((id) => known.has(id) && known.get(id)!.roomId !== roomId);
    if (foreign !== undefined) return refuse('foreign_references', refusal(`The event refers to ${foreign}, an event of another room`), { ...about, eventId });

    const cacheKey = `${eventId}|${policy.policyVersion}`;
    this.decided ??= new LRUCache<string, PolicyDecision>({ max: 50_000 });
    let decision = this.decided.get(cacheKey);
    if (!decision) {
      decision = evaluatePolicy(policy, checked.pdu, { now: Date.now(), rates: (this.rates ??= new RateWindows()) });
      this.decided.set(cacheKey, decision);
    }
    this.metrics.decisions.inc({ rule: decision.rule, outcome: decision.outcome });
    const audit: PolicyAuditNotes = { decision: decision.outcome === 'sign' ? 'signed' : 'refused', ...about, eventId, rule: decision.rule, policyVersion: decision.policyVersion };
    if (decision.outcome === 'refuse') return { result: { error: refusal(decision.reason) }, audit };
    const signature = encodeUnpaddedBase64(key.sign(Buffer.from(redactedSigningText(checked.pdu, version), 'utf8')));
    return { result: { signatures: { [this.identity.serverName]: { [POLICY_KEY_ID]: signature } } }, audit };
  }

  /** The room's version when its current m.room.policy names us with our key and a user of ours is joined. */
  private async protectedRoomVersion(roomId: string, ourPublicKey: string): Promise<string | undefined> {
    const version = await this.reads.roomVersion(roomId);
    if (!version) return undefined;
    const content = await this.reads.currentStateContent(roomId, 'm.room.policy');
    const keys = content?.public_keys as Record<string, unknown> | undefined;
    if (content?.via !== this.identity.serverName || keys === null || typeof keys !== 'object' || keys.ed25519 !== ourPublicKey) return undefined;
    const joined = await this.reads.joinedServers(roomId);
    return joined.includes(this.identity.serverName) ? version : undefined;
  }
}
