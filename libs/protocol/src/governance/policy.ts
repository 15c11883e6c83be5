// The operator's federation policy: validated against its schema, compiled into glob lists, versioned by
// the operator's `version` and a hash of the whole document (both recorded on every decision).
import { createHash } from 'node:crypto';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { canonicalJson } from '../canonical-json';
import { GlobList } from './glob';
import { policySchema } from './policy-schema';

export type PolicyAction = 'allow' | 'deny';

export interface RateLimit {
  events: number;
  perSeconds: number;
}

/** The policy document as the operator writes it (YAML or JSON). */
export interface PolicyDocument {
  version: number | string;
  /** What an event no rule refuses gets when no rule applied to it either (default allow). */
  default?: PolicyAction;
  servers?: Array<{ id: string; action: PolicyAction; servers: string[]; reason?: string }>;
  rooms?: RoomRuleDocument[];
}

export interface RoomRuleDocument {
  id: string;
  /** Room ID globs. */
  rooms: string[];
  reason?: string;
  servers?: { allow?: string[]; deny?: string[] };
  join?: { servers?: string[]; users?: string[] };
  eventTypes?: { allow?: string[]; deny?: string[] };
  attachments?: { mimetypes?: string[]; maxBytes?: number };
  links?: { allow?: string[]; deny?: string[] };
  keywords?: { deny: string[] };
  rate?: { perSender?: RateLimit; perServer?: RateLimit };
  serverAcl?: boolean;
}

export interface CompiledServerRule {
  id: string;
  action: PolicyAction;
  servers: GlobList;
  reason?: string;
}

export interface CompiledRoomRule {
  id: string;
  rooms: GlobList;
  reason?: string;
  servers?: { allow?: GlobList; deny?: GlobList };
  join?: { servers?: GlobList; users?: GlobList };
  eventTypes?: { allow?: GlobList; deny?: GlobList };
  attachments?: { mimetypes?: GlobList; maxBytes?: number };
  links?: { allow?: GlobList; deny?: GlobList };
  keywords?: string[];
  rate?: { perSender?: RateLimit; perServer?: RateLimit };
  serverAcl: boolean;
}

export interface CompiledPolicy {
  /** `<version>:<first 16 hex digits of the document's sha256>`, recorded on every decision. */
  readonly policyVersion: string;
  readonly hash: string;
  readonly document: PolicyDocument;
  readonly defaultAction: PolicyAction;
  readonly serverRules: readonly CompiledServerRule[];
  readonly roomRules: readonly CompiledRoomRule[];
  /** Every rule ID a decision may name (bounded: they come from the file), for metrics and tools. */
  readonly ruleIds: readonly string[];
}

export class PolicyError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? `invalid policy: ${problems[0]}` : `invalid policy:\n  ${problems.join('\n  ')}`);
    this.name = 'PolicyError';
  }
}

/** Rule IDs the engine itself may decide with. */
export const DEFAULT_RULE_ID = 'default';
export const ROOM_CHECKS = ['servers', 'join', 'eventTypes', 'attachments', 'links', 'keywords', 'rate'] as const;
export type RoomCheck = (typeof ROOM_CHECKS)[number];

/**
 * Compiled when the first policy is validated, not when this module loads: the policy engine is off unless the
 * operator configures one, and the compiled validator is code and memory an idle gateway does not need (issue 19).
 */
let policyValidator: ValidateFunction | undefined;
const validatePolicy = (): ValidateFunction => (policyValidator ??= new Ajv({ allErrors: true, strict: true }).compile(policySchema));

function describe(error: ErrorObject): string {
  const at = error.instancePath === '' ? 'the policy' : error.instancePath.slice(1).replaceAll('/', '.');
  const params = error.params as { additionalProperty?: string; missingProperty?: string; allowedValues?: unknown[] };
  if (error.keyword === 'additionalProperties') return `${at}: unknown key ${params.additionalProperty}`;
  if (error.keyword === 'required') return `${at}: ${params.missingProperty} is required`;
  if (error.keyword === 'enum') return `${at} must be one of ${params.allowedValues?.join(', ')}`;
  return `${at} ${error.message}`;
}

const list = (globs: string[] | undefined, caseInsensitive = false) => (globs === undefined ? undefined : new GlobList(globs, caseInsensitive));

/** Validates and compiles a policy document. Throws PolicyError listing every problem. */
export function compilePolicy(document: unknown): CompiledPolicy {
  const validate = validatePolicy();
  if (!validate(document)) {
    const problems = [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'anyOf').map(describe))];
    throw new PolicyError(problems.length > 0 ? problems : ['does not match the policy schema']);
  }
  const doc = document as unknown as PolicyDocument;
  const problems: string[] = [];
  const seen = new Set<string>([DEFAULT_RULE_ID]);
  const claim = (id: string, where: string) => {
    if (seen.has(id)) problems.push(`${where}: rule id ${JSON.stringify(id)} is used twice (or is reserved)`);
    seen.add(id);
  };
  (doc.servers ?? []).forEach((rule, i) => claim(rule.id, `servers.${i}`));
  (doc.rooms ?? []).forEach((rule, i) => claim(rule.id, `rooms.${i}`));
  if (problems.length > 0) throw new PolicyError(problems);

  const serverRules = (doc.servers ?? []).map((rule) => ({ id: rule.id, action: rule.action, servers: new GlobList(rule.servers, true), reason: rule.reason }));
  const roomRules = (doc.rooms ?? []).map(
    (rule): CompiledRoomRule => ({
      id: rule.id,
      rooms: new GlobList(rule.rooms),
      reason: rule.reason,
      servers: rule.servers && { allow: list(rule.servers.allow, true), deny: list(rule.servers.deny, true) },
      join: rule.join && { servers: list(rule.join.servers, true), users: list(rule.join.users) },
      eventTypes: rule.eventTypes && { allow: list(rule.eventTypes.allow), deny: list(rule.eventTypes.deny) },
      attachments: rule.attachments && { mimetypes: list(rule.attachments.mimetypes, true), maxBytes: rule.attachments.maxBytes },
      links: rule.links && { allow: list(rule.links.allow, true), deny: list(rule.links.deny, true) },
      keywords: rule.keywords?.deny.map(normaliseText),
      rate: rule.rate,
      serverAcl: rule.serverAcl === true,
    }),
  );
  const hash = createHash('sha256').update(canonicalJson(doc)).digest('hex');
  const ruleIds = [DEFAULT_RULE_ID, ...serverRules.map((r) => r.id), ...roomRules.flatMap((r) => [r.id, ...ROOM_CHECKS.filter((c) => r[c] !== undefined).map((c) => `${r.id}/${c}`)])];
  return {
    policyVersion: `${doc.version}:${hash.slice(0, 16)}`,
    hash,
    document: doc,
    defaultAction: doc.default ?? 'allow',
    serverRules,
    roomRules,
    ruleIds,
  };
}

/** Text as keyword rules compare it: compatibility-normalised (full-width letters and the like fold) and lower case. */
export function normaliseText(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}
