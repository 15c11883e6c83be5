// Decides whether the policy server signs an event: the same evaluation for events of local and remote
// senders. Server rules first (first match in file order: deny refuses, allow lets the room rules look),
// then every room rule whose room globs match, each check in a fixed order; the first refusal decides.
import { LRUCache } from 'lru-cache';
import { hostOfServerName, matchServer } from './glob';
import { DEFAULT_RULE_ID, normaliseText, type CompiledPolicy, type CompiledRoomRule, type RateLimit } from './policy';

export type PolicyOutcome = 'sign' | 'refuse';

export interface PolicyDecision {
  outcome: PolicyOutcome;
  /** The rule that decided: a rule ID from the policy, `<room rule>/<check>`, or `default`. */
  rule: string;
  reason: string;
  policyVersion: string;
}

/** What the engine reads of an event; anything else in it is ignored. */
export interface PolicyEvent {
  event_id?: unknown;
  room_id?: unknown;
  sender?: unknown;
  type?: unknown;
  state_key?: unknown;
  content?: unknown;
}

const ATTACHMENT_MSGTYPES = new Set(['m.image', 'm.file', 'm.video', 'm.audio']);
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/([^\s/?#<>"'\\]+)/gi;
/** Text looked at for links and keywords: at most this much of an event's strings. */
const MAX_TEXT_CHARS = 70_000;

const serverOf = (userId: string): string => userId.slice(userId.indexOf(':') + 1);

function stringsOf(value: unknown, into: string[], budget: { left: number }, depth = 0): void {
  if (budget.left <= 0 || depth > 32) return;
  if (typeof value === 'string') {
    into.push(value.slice(0, budget.left));
    budget.left -= value.length;
  } else if (Array.isArray(value)) {
    for (const item of value) stringsOf(item, into, budget, depth + 1);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) stringsOf(item, into, budget, depth + 1);
  }
}

/** Hosts of the URLs in the text, lower case, without user info or port. */
export function linkHosts(text: string): string[] {
  const hosts: string[] = [];
  for (const match of text.matchAll(URL_PATTERN)) {
    const authority = match[1]!;
    const host = hostOfServerName(authority.slice(authority.lastIndexOf('@') + 1)).toLowerCase().replace(/\.$/, '');
    if (host !== '') hosts.push(host);
  }
  return hosts;
}

interface Attachment {
  mimetype?: string;
  size?: number;
}

function attachmentOf(type: unknown, content: Record<string, unknown>): Attachment | undefined {
  const isAttachment = type === 'm.sticker' || (type === 'm.room.message' && typeof content.msgtype === 'string' && ATTACHMENT_MSGTYPES.has(content.msgtype));
  if (!isAttachment) return undefined;
  const info = content.info !== null && typeof content.info === 'object' ? (content.info as Record<string, unknown>) : {};
  return {
    ...(typeof info.mimetype === 'string' ? { mimetype: info.mimetype } : {}),
    ...(typeof info.size === 'number' ? { size: info.size } : {}),
  };
}

/** Counts per key in fixed windows; keys bounded (least recently used forgotten). */
export class RateWindows {
  private readonly windows: LRUCache<string, { start: number; count: number }>;

  constructor(maxKeys = 100_000) {
    this.windows = new LRUCache({ max: maxKeys });
  }

  /** Counts one event under `key`; false when that is over the limit. */
  hit(key: string, limit: RateLimit, now: number): boolean {
    const windowMs = limit.perSeconds * 1000;
    const current = this.windows.get(key);
    if (current === undefined || now - current.start >= windowMs) {
      this.windows.set(key, { start: now, count: 1 });
      return true;
    }
    current.count++;
    return current.count <= limit.events;
  }
}

export interface EvaluateOptions {
  now: number;
  /** Rate windows to count in; without them rate rules are not checked (`fedgate policy test`). */
  rates?: RateWindows;
}

type Check = { rule: string; reason: string } | undefined;

function refuse(rule: CompiledRoomRule, check: string, reason: string): Check {
  return { rule: `${rule.id}/${check}`, reason: rule.reason ? `${reason} (${rule.reason})` : reason };
}

function checkRoomRule(rule: CompiledRoomRule, event: PolicyEvent, sender: string, content: Record<string, unknown>, options: EvaluateOptions): Check {
  const server = serverOf(sender);
  if (rule.servers) {
    const denied = rule.servers.deny && matchServer(rule.servers.deny, server);
    if (denied !== undefined) return refuse(rule, 'servers', `server ${server} is denied in this room (${denied})`);
    if (rule.servers.allow && matchServer(rule.servers.allow, server) === undefined) return refuse(rule, 'servers', `server ${server} is not allowed in this room`);
  }
  if (rule.join && event.type === 'm.room.member' && typeof event.state_key === 'string') {
    const membership = content.membership;
    if (membership === 'join' || membership === 'knock' || membership === 'invite') {
      const target = event.state_key;
      const byUser = rule.join.users?.match(target) !== undefined;
      const byServer = rule.join.servers !== undefined && matchServer(rule.join.servers, serverOf(target)) !== undefined;
      if (!byUser && !byServer) return refuse(rule, 'join', `${target} may not ${membership === 'invite' ? 'be invited to' : membership} this room`);
    }
  }
  if (rule.eventTypes && typeof event.type === 'string') {
    if (rule.eventTypes.deny?.match(event.type) !== undefined) return refuse(rule, 'eventTypes', `events of type ${event.type} are not allowed here`);
    if (rule.eventTypes.allow && rule.eventTypes.allow.match(event.type) === undefined) return refuse(rule, 'eventTypes', `events of type ${event.type} are not allowed here`);
  }
  if (rule.attachments) {
    const newContent = content['m.new_content'];
    for (const candidate of [content, newContent]) {
      if (candidate === null || typeof candidate !== 'object') continue;
      const attachment = attachmentOf(event.type, candidate as Record<string, unknown>);
      if (!attachment) continue;
      const { mimetypes, maxBytes } = rule.attachments;
      if (mimetypes) {
        if (attachment.mimetype === undefined) return refuse(rule, 'attachments', 'attachments must declare their mimetype (info.mimetype)');
        if (mimetypes.match(attachment.mimetype) === undefined) return refuse(rule, 'attachments', `attachments of type ${attachment.mimetype} are not allowed here`);
      }
      if (maxBytes !== undefined) {
        if (attachment.size === undefined) return refuse(rule, 'attachments', 'attachments must declare their size (info.size)');
        if (attachment.size > maxBytes) return refuse(rule, 'attachments', `attachments of ${attachment.size} bytes are over the ${maxBytes} allowed here`);
      }
    }
  }
  if (rule.links || rule.keywords) {
    const strings: string[] = [];
    stringsOf(content, strings, { left: MAX_TEXT_CHARS });
    if (rule.links) {
      for (const host of strings.flatMap(linkHosts)) {
        if (rule.links.deny && matchServer(rule.links.deny, host) !== undefined) return refuse(rule, 'links', `links to ${host} are not allowed here`);
        if (rule.links.allow && matchServer(rule.links.allow, host) === undefined) return refuse(rule, 'links', `links to ${host} are not allowed here`);
      }
    }
    if (rule.keywords) {
      const text = normaliseText(strings.join('\n'));
      const keyword = rule.keywords.find((k) => text.includes(k));
      if (keyword !== undefined) return refuse(rule, 'keywords', 'the event contains a word or phrase not allowed here');
    }
  }
  if (rule.rate && options.rates) {
    const { perSender, perServer } = rule.rate;
    if (perSender && !options.rates.hit(`${rule.id}|sender|${sender}`, perSender, options.now)) return refuse(rule, 'rate', `${sender} sends faster than ${perSender.events} events per ${perSender.perSeconds} s`);
    if (perServer && !options.rates.hit(`${rule.id}|server|${server}`, perServer, options.now)) return refuse(rule, 'rate', `${server} sends faster than ${perServer.events} events per ${perServer.perSeconds} s`);
  }
  return undefined;
}

/** The decision of `policy` on `event`. Never throws: a malformed event is refused by rule `default`. */
export function evaluatePolicy(policy: CompiledPolicy, event: PolicyEvent, options: EvaluateOptions): PolicyDecision {
  const decide = (outcome: PolicyDecision['outcome'], rule: string, reason: string): PolicyDecision => ({ outcome, rule, reason, policyVersion: policy.policyVersion });
  const sender = event.sender;
  const roomId = event.room_id;
  if (typeof sender !== 'string' || !sender.includes(':') || typeof roomId !== 'string') return decide('refuse', DEFAULT_RULE_ID, 'the event has no valid sender or room_id');
  const content = event.content !== null && typeof event.content === 'object' && !Array.isArray(event.content) ? (event.content as Record<string, unknown>) : {};
  const server = serverOf(sender);

  let allowedBy: string | undefined;
  for (const rule of policy.serverRules) {
    const glob = matchServer(rule.servers, server);
    if (glob === undefined) continue;
    if (rule.action === 'deny') return decide('refuse', rule.id, `server ${server} is denied${rule.reason ? `: ${rule.reason}` : ` (${glob})`}`);
    allowedBy = rule.id;
    break;
  }
  let appliedRoomRule: string | undefined;
  // Under `default: deny` a server takes part only when a server rule or a room rule's `servers.allow` lets it.
  let roomAllowsServer = false;
  for (const rule of policy.roomRules) {
    if (rule.rooms.match(roomId) === undefined) continue;
    appliedRoomRule ??= rule.id;
    const refused = checkRoomRule(rule, event, sender, content, options);
    if (refused) return decide('refuse', refused.rule, refused.reason);
    if (rule.servers?.allow) roomAllowsServer = true;
  }
  if (policy.defaultAction === 'deny' && allowedBy === undefined && !roomAllowsServer) {
    return decide('refuse', DEFAULT_RULE_ID, `no rule allows server ${server} (the policy denies by default)`);
  }
  if (appliedRoomRule !== undefined) return decide('sign', appliedRoomRule, 'every check of the room rule passed');
  if (allowedBy !== undefined) return decide('sign', allowedBy, `server ${server} is allowed`);
  return decide('sign', DEFAULT_RULE_ID, 'no rule refuses it');
}

/** Whether `server` may take part at all under the policy's server rules (used for the requesting server and ACLs). */
export function serverRuleFor(policy: CompiledPolicy, server: string): { action: 'allow' | 'deny'; rule: string; reason?: string } | undefined {
  for (const rule of policy.serverRules) {
    if (matchServer(rule.servers, server) !== undefined) return { action: rule.action, rule: rule.id, reason: rule.reason };
  }
  return undefined;
}


