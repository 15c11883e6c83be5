// Honouring a room's policy server (spec v1.18, server-server API "Policy Servers"): this server's events are
// signed by it before they are sent (a refusal refuses the client's request, nothing kept), and events from
// other servers without its valid signature are soft-failed once it has been asked again and still did not sign.
import type { Counter } from 'prom-client';
import { FederationClientError, FederationHttpError } from '@fedgate/federation-client';
import {
  isExemptFromPolicyServer,
  parsePolicySignResponse,
  policySignRequestBody,
  POLICY_SIGN_PATH,
  verifyPolicyServerSignature,
  withPolicyServerSignature,
  type Pdu,
  type RoomVersionRules,
} from '@fedgate/protocol';
import { policyServerOf, POLICY_STATE_KEY, toRoomEvent, type RoomPolicyServer } from '@fedgate/room-state';
import { pduWithRedaction, type Store } from '@fedgate/store';
import { CommandRefusal, describeError } from './errors';
import { policyServerEventsCounter, type PolicySigningLimits, type UnansweringPolicyServers } from './policy-server-limits';
import type { Evaluation } from './room-timeline';
import { answerWithin, RemoteBudgetSpent, RemoteIoNeeded, type FederationCalls } from './remote-budget';

export type PolicySigning =
  | { ok: true; pdu: Pdu }
  | {
      ok: false;
      /** refused: the policy server answered with an error; unreachable: no answer; invalid_answer: a signature that does not verify. */
      kind: 'refused' | 'unreachable' | 'invalid_answer';
      /** What the client is answered with: the policy server's own error when it gave one (the spec: verbatim). */
      errcode: string;
      error: string;
      status: number;
      extra?: Record<string, unknown>;
    };

type EnabledPolicyServer = Extract<RoomPolicyServer, { enabled: true }>;

type Asked = { path: string; started: number; body: unknown } | { path: string; started: number; error: unknown };

/** MSC4284's path, which policy servers from before spec v1.18 may serve alone. */
export const UNSTABLE_POLICY_SIGN_PATH = '/_matrix/policy/unstable/org.matrix.msc4284/sign';

/** What servers answer for an endpoint they do not have (the spec's "Unsupported endpoints"). */
function isUnknownEndpoint(err: unknown): boolean {
  return err instanceof FederationHttpError && err.errcode === 'M_UNRECOGNIZED' && [400, 404, 405].includes(err.status);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function mayPass(err: unknown): boolean {
  if (err instanceof FederationHttpError) return err.status >= 500;
  return err instanceof FederationClientError && ['UNREACHABLE', 'TIMEOUT', 'TLS_FAILURE', 'DNS_FAILURE'].includes(err.code);
}

export class PolicyServerSignatures {
  constructor(
    private readonly store: Store,
    private readonly federation: FederationCalls,
    private readonly serverName: string,
    private readonly limits: PolicySigningLimits,
    /** Received events only: servers not asked again for a while after leaving a request unanswered. */
    private readonly unanswering?: UnansweringPolicyServers,
    private readonly counted: Counter<'event' | 'outcome'> = policyServerEventsCounter(),
  ) {}

  /** The room's policy server per its current state (`state`) and the servers joined there now. */
  async policyServerOf(roomId: string, state: ReadonlyMap<string, string>): Promise<RoomPolicyServer> {
    const policyId = state.get(POLICY_STATE_KEY);
    const record = policyId === undefined ? undefined : await this.store.events.get(policyId);
    // A redacted m.room.policy keeps no content (redaction preserves none of it): the room then uses no policy server.
    const policyEvent = record ? toRoomEvent(pduWithRedaction(record, (await this.store.rooms.get(roomId))?.roomVersion), record.eventId) : undefined;
    return policyServerOf(policyEvent, policyEvent ? await this.store.rooms.getJoinedServers(roomId) : []);
  }

  /** The policy server that must sign `pdu` in this room, or undefined when none must. */
  async requiredSigner(roomId: string, pdu: Pdu, state: ReadonlyMap<string, string>): Promise<EnabledPolicyServer | undefined> {
    if (isExemptFromPolicyServer(pdu)) return undefined;
    const policyServer = await this.policyServerOf(roomId, state);
    return policyServer.enabled ? policyServer : undefined;
  }

  /**
   * A local event before it is sent: signed by the room's policy server, or a refusal carrying the policy server's
   * error. Unchanged when the room uses none (or the event is exempt). Nothing is written but the audit record.
   */
  async signLocal(roomId: string, eventId: string, pdu: Pdu, rules: RoomVersionRules, state: ReadonlyMap<string, string>): Promise<Pdu> {
    const policyServer = await this.requiredSigner(roomId, pdu, state);
    if (!policyServer) return pdu;
    const signing = await this.requestSignature(policyServer, roomId, eventId, pdu, rules);
    this.counted.inc({ event: 'ours', outcome: signing.ok ? 'signed' : signing.kind });
    if (signing.ok) return signing.pdu;
    throw new CommandRefusal(signing.errcode, signing.error, signing.status, signing.extra);
  }

  /** Check 7 on receipt (spec v1.18) of what passed the other checks: without the policy server's valid signature (asked once), soft-failed with the reason. */
  async softFailUnsigned(evaluation: Evaluation, current: ReadonlyMap<string, string> | undefined): Promise<Evaluation> {
    if (evaluation.status !== 'accepted' || !current) return evaluation;
    const verdict = await this.checkReceived(evaluation.roomId, evaluation.eventId, evaluation.pdu, evaluation.rules, current);
    return verdict.ok ? { ...evaluation, pdu: verdict.pdu } : { ...evaluation, status: 'soft_failed', reason: verdict.reason };
  }

  /**
   * A received event: a valid signature with the room's key, or a new one asked for (within `limits`). Returns
   * the event with the signature, or the reason it has none (the event is then soft-failed).
   */
  async checkReceived(roomId: string, eventId: string, pdu: Pdu, rules: RoomVersionRules, state: ReadonlyMap<string, string>): Promise<{ ok: true; pdu: Pdu } | { ok: false; reason: string }> {
    const policyServer = await this.requiredSigner(roomId, pdu, state);
    if (!policyServer) return { ok: true, pdu };
    const carried = verifyPolicyServerSignature(pdu, rules, policyServer.via, policyServer.publicKey);
    if (carried.valid) {
      this.counted.inc({ event: 'received', outcome: 'already_signed' });
      return { ok: true, pdu };
    }
    const { via } = policyServer;
    if (this.unanswering?.has(via)) {
      this.counted.inc({ event: 'received', outcome: 'not_asked' });
      const reason = `policy_server: ${carried.reason}, and ${via} left a signing request unanswered within the last ${this.unanswering.quietMs} ms: not asked again yet`;
      await this.auditSoftFail(via, roomId, eventId, pdu, 'not_asked', reason);
      return { ok: false, reason };
    }
    const signing = await this.requestSignature(policyServer, roomId, eventId, pdu, rules);
    this.counted.inc({ event: 'received', outcome: signing.ok ? 'signed' : signing.kind });
    if (signing.ok) return signing;
    if (signing.kind === 'unreachable') this.unanswering?.mark(via);
    const reason = `policy_server: ${carried.reason}, and asked again ${via} ${signing.kind === 'refused' ? 'refused' : 'gave none'}: ${signing.errcode} ${signing.error}`;
    await this.auditSoftFail(via, roomId, eventId, pdu, signing.kind, reason, signing.errcode);
    return { ok: false, reason };
  }

  /**
   * The policy decision record of a received event soft-failed for want of a signature (`decision: soft_failed`, as
   * the policy server's own records, so `fedgate audit --decision soft_failed` finds both sides). `rule` is the
   * policy server's errcode: its rule names are its own and not sent.
   */
  private async auditSoftFail(via: string, roomId: string, eventId: string, pdu: Pdu, kind: 'not_asked' | 'refused' | 'unreachable' | 'invalid_answer', reason: string, errcode?: string): Promise<void> {
    const sender = typeof pdu.sender === 'string' ? pdu.sender : undefined;
    const server = sender?.includes(':') ? sender.slice(sender.indexOf(':') + 1) : undefined;
    await this.store.audit.append({
      direction: 'in',
      origin: server ?? via,
      destination: this.serverName,
      method: 'PDU',
      path: `policy_server:${via}`,
      ts: Date.now(),
      durationMs: 0,
      status: 0,
      outcome: 'rejected',
      reason: `policy_server_${kind}`,
      decision: 'soft_failed',
      roomId,
      eventId,
      ...(sender ? { sender } : {}),
      ...(server ? { server } : {}),
      ...(errcode ? { rule: `policy_server/${errcode}` } : {}),
      details: { policyServer: via, error: reason },
    });
  }

  /**
   * POST /_matrix/policy/v1/sign (X-Matrix signed; MSC4284's unstable path when the stable one is unknown there),
   * retried within the limits, the answer verified with the room's key. Every request leaves an audit record.
   */
  async requestSignature(policyServer: EnabledPolicyServer, roomId: string, eventId: string, pdu: Pdu, rules: RoomVersionRules): Promise<PolicySigning> {
    const { via, publicKey } = policyServer;
    let failure: PolicySigning & { ok: false } = { ok: false, kind: 'unreachable', errcode: 'M_UNKNOWN', error: `policy server ${via} was not asked`, status: 502 };
    for (let attempt = 1; attempt <= this.limits.attempts; attempt++) {
      if (attempt > 1) await sleep(this.limits.retryDelayMs);
      const asked = await this.ask(via, pdu, roomId, eventId);
      const { path, started } = asked;
      if ('error' in asked) {
        const err = asked.error;
        if (err instanceof FederationHttpError && err.status < 500 && err.errcode !== undefined) {
          const answer = (err.body ?? {}) as { error?: unknown; retry_after_ms?: unknown };
          const error = typeof answer.error === 'string' ? answer.error : `policy server ${via} refused the event`;
          const extra = typeof answer.retry_after_ms === 'number' ? { retry_after_ms: answer.retry_after_ms } : undefined;
          await this.audit(via, path, roomId, eventId, started, err.status, 'rejected', err.errcode, error);
          return { ok: false, kind: 'refused', errcode: err.errcode, error, status: err.status, extra };
        }
        const code = err instanceof FederationHttpError ? `http_${err.status}` : err instanceof FederationClientError ? err.code : 'error';
        failure = { ok: false, kind: 'unreachable', errcode: 'M_UNKNOWN', error: `policy server ${via} gave no answer: ${describeError(err)}`, status: 502 };
        await this.audit(via, path, roomId, eventId, started, err instanceof FederationHttpError ? err.status : 0, 'error', code, failure.error);
        if (mayPass(err)) continue;
        return failure;
      }
      const parsed = parsePolicySignResponse(asked.body, via);
      const signed = parsed.ok ? withPolicyServerSignature(pdu, via, parsed.signature) : pdu;
      const check = parsed.ok ? verifyPolicyServerSignature(signed, rules, via, publicKey) : { valid: false as const, reason: parsed.reason };
      if (check.valid) {
        await this.audit(via, path, roomId, eventId, started, 200, 'ok', 'policy_server_signed');
        return { ok: true, pdu: signed };
      }
      // A lying or broken policy server: its answer is not used, and asking again would not change it.
      const error = `policy server ${via} answered without a valid signature: ${check.reason}`;
      await this.audit(via, path, roomId, eventId, started, 200, 'rejected', 'policy_signature_invalid', error);
      return { ok: false, kind: 'invalid_answer', errcode: 'M_UNKNOWN', error, status: 502 };
    }
    return failure;
  }

  /** The stable endpoint, then (only when it is unknown there) the unstable one; the stable answer stands when neither is known. */
  private async ask(via: string, pdu: Pdu, roomId: string, eventId: string): Promise<Asked> {
    const stable = await this.askAt(via, POLICY_SIGN_PATH, pdu);
    if (!('error' in stable) || !isUnknownEndpoint(stable.error)) return stable;
    const unstable = await this.askAt(via, UNSTABLE_POLICY_SIGN_PATH, pdu);
    const [unused, used] = 'error' in unstable && isUnknownEndpoint(unstable.error) ? [unstable, stable] : [stable, unstable];
    await this.audit(via, unused.path, roomId, eventId, unused.started, 404, 'rejected', 'M_UNRECOGNIZED', `not served by ${via}`);
    return used;
  }

  private async askAt(via: string, path: string, pdu: Pdu): Promise<Asked> {
    const started = Date.now();
    const { timeoutMs } = this.limits;
    try {
      const answer = this.federation.postJson(via, path, policySignRequestBody(pdu), { timeoutMs });
      // Bounded here too, whatever the transport does with the timeout.
      const { body } = await answerWithin(answer, timeoutMs, () => new FederationClientError('TIMEOUT', `no answer within ${timeoutMs} ms`), undefined, () => new Error('aborted'));
      return { path, started, body };
    } catch (error) {
      // The partition path never waits on a remote server (the PDU is parked), and a spent budget is the parking's to handle.
      if (error instanceof RemoteIoNeeded || error instanceof RemoteBudgetSpent) throw error;
      return { path, started, error };
    }
  }

  private async audit(via: string, path: string, roomId: string, eventId: string, started: number, status: number, outcome: 'ok' | 'rejected' | 'error', reason: string, error?: string): Promise<void> {
    await this.store.audit.append({
      direction: 'out',
      origin: this.serverName,
      destination: via,
      method: 'POST',
      path,
      ts: started,
      durationMs: Date.now() - started,
      status,
      outcome,
      reason,
      details: error === undefined ? { roomId, eventId } : { roomId, eventId, error },
    });
  }
}
