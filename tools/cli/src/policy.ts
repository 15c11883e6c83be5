// `fedgate policy test EVENT.json`: which rule of the policy would decide an event, and how.
// `fedgate audit`: the audit records (policy decisions and federation requests) as JSON lines.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadConfig, readPolicyFile, type FedgateConfig } from '@fedgate/config';
import { evaluatePolicy, PolicyError, serverRuleFor, type CompiledPolicy, type PolicyDecision } from '@fedgate/protocol';
import { openStore, type AuditQuery, type PolicyAuditDecision, type Store } from '@fedgate/store';
import { stdio, type DeadLetterIo } from './dead-letters';

export const POLICY_TEST_HELP = `
Evaluates EVENT.json (one event, as a server would send it to POST /_matrix/policy/v1/sign) against the
policy file (--policy FILE, else policyServer.policyFile of the config) and prints the decision:

  sign|refuse  <rule>  <policy version>  <reason>

--json prints {"outcome", "rule", "reason", "policy_version"}. --origin SERVER also checks the server asking
(a server denied by a server rule may not ask at all). Rate rules are not counted here. Nothing is signed or
recorded: the running servers are not contacted. Checks the running policy server makes before the policy
(the room names us, the event is signed by its sender's server) are not made either.

Exit status: 0 when the event would be signed; 3 when it would be refused; 1 when the policy or the event
cannot be read; 2 on a usage error.
`;

export const AUDIT_HELP = `
Prints audit records as JSON lines (one JSON object a line), newest first, from the store of the config
(--config FILE or FEDGATE_* variables): the SQLite file in embedded mode, MongoDB in distributed mode.

Filters (all optional, combined with AND):
  --room ID            policy decisions about events of this room
  --server NAME        policy decisions about events of this server's users
  --origin NAME        records of requests made by this server
  --rule ID            policy decisions made by this rule (e.g. deny-spam, shared/attachments, default)
  --decision D         signed | refused | soft_failed | policy_reload
  --policy             only policy records (any decision)
  --since T, --until T ISO 8601 time, milliseconds since 1970, or a duration ago (30s, 15m, 2h, 7d)
  --limit N            at most N records (default 1000)

Fields: id, ts, direction, origin, destination, method, path, status, outcome, reason, and for policy
decisions decision, room_id, event_id, sender, server, rule, policy_version; details when recorded.

Exit status: 0 on success; 1 when the store cannot be opened; 2 on a usage error.
`;

export interface PolicyTestOptions {
  policy?: string;
  config?: string;
  origin?: string;
  json?: boolean;
}

async function policyFrom(opts: PolicyTestOptions): Promise<CompiledPolicy> {
  if (opts.policy) return readPolicyFile(opts.policy);
  const config = loadConfig({ argv: opts.config ? ['--config', opts.config] : [] });
  if (!config.policyServer.policyFile) throw new PolicyError(['no policy file: give --policy FILE or set policyServer.policyFile in the config']);
  return readPolicyFile(config.policyServer.policyFile);
}

export async function policyTest(eventFile: string, opts: PolicyTestOptions, io: DeadLetterIo = stdio): Promise<number> {
  let policy: CompiledPolicy;
  let event: unknown;
  try {
    policy = await policyFrom(opts);
  } catch (error) {
    io.err(`fedgate policy test: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    event = JSON.parse(await readFile(eventFile, 'utf8'));
  } catch (error) {
    io.err(`fedgate policy test: cannot read the event ${eventFile}: ${(error as Error).message}\n`);
    return 1;
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    io.err(`fedgate policy test: ${eventFile} must hold one event (a JSON object)\n`);
    return 1;
  }
  let decision: PolicyDecision;
  const originRule = opts.origin === undefined ? undefined : serverRuleFor(policy, opts.origin);
  if (originRule?.action === 'deny') {
    decision = { outcome: 'refuse', rule: originRule.rule, reason: `the asking server ${opts.origin} is denied${originRule.reason ? `: ${originRule.reason}` : ''}`, policyVersion: policy.policyVersion };
  } else {
    decision = evaluatePolicy(policy, event as Record<string, unknown>, { now: Date.now() });
  }
  if (opts.json) io.out(JSON.stringify({ outcome: decision.outcome, rule: decision.rule, reason: decision.reason, policy_version: decision.policyVersion }) + '\n');
  else io.out([decision.outcome, decision.rule, decision.policyVersion, decision.reason].join('\t') + '\n');
  return decision.outcome === 'sign' ? 0 : 3;
}

export interface AuditOptions {
  config?: string;
  room?: string;
  server?: string;
  origin?: string;
  rule?: string;
  decision?: string;
  policy?: boolean;
  since?: string;
  until?: string;
  limit?: string;
}

const DECISIONS: readonly PolicyAuditDecision[] = ['signed', 'refused', 'soft_failed', 'policy_reload'];
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** ISO 8601, milliseconds since 1970, or a duration ago (`15m`). */
export function parseAuditTime(value: string, now = Date.now()): number {
  const ago = /^(\d+)([smhd])$/.exec(value);
  if (ago) return now - Number(ago[1]) * UNITS[ago[2]!]!;
  if (/^\d+$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw new Error(`not a time: ${JSON.stringify(value)} (ISO 8601, milliseconds, or a duration ago like 15m)`);
  return parsed;
}

/** The store query the options ask for; throws on a bad option. */
export function auditQueryOf(opts: AuditOptions, now = Date.now()): AuditQuery {
  if (opts.decision !== undefined && !DECISIONS.includes(opts.decision as PolicyAuditDecision)) throw new Error(`--decision must be one of ${DECISIONS.join(', ')}`);
  const limit = opts.limit === undefined ? 1000 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit must be a positive integer');
  return {
    ...(opts.room ? { roomId: opts.room } : {}),
    ...(opts.server ? { server: opts.server } : {}),
    ...(opts.origin ? { origin: opts.origin } : {}),
    ...(opts.rule ? { rule: opts.rule } : {}),
    ...(opts.decision ? { decision: opts.decision as PolicyAuditDecision } : {}),
    ...(opts.since ? { sinceTs: parseAuditTime(opts.since, now) } : {}),
    ...(opts.until ? { untilTs: parseAuditTime(opts.until, now) } : {}),
    limit,
  };
}

const SNAKE: Record<string, string> = { durationMs: 'duration_ms', txnId: 'txn_id', pduCount: 'pdu_count', eduCount: 'edu_count', roomId: 'room_id', eventId: 'event_id', policyVersion: 'policy_version' };

export async function exportAudit(store: Pick<Store, 'audit'>, opts: AuditOptions, io: DeadLetterIo = stdio): Promise<number> {
  let query: AuditQuery;
  try {
    query = auditQueryOf(opts);
  } catch (error) {
    io.err(`fedgate audit: ${(error as Error).message}\n`);
    return 2;
  }
  let records = await store.audit.query(query);
  if (opts.policy) records = records.filter((r) => r.decision !== undefined);
  for (const record of records) {
    const line: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) if (value !== undefined) line[SNAKE[key] ?? key] = value;
    line.time = new Date(record.ts).toISOString();
    io.out(JSON.stringify(line) + '\n');
  }
  return 0;
}

/** The deployment's store, opened for reading the audit records. */
export async function withAuditStore(opts: AuditOptions, run: (store: Store) => Promise<number>, io: DeadLetterIo = stdio): Promise<number> {
  let config: FedgateConfig;
  let store: Store;
  try {
    config = loadConfig({ argv: opts.config ? ['--config', opts.config] : [] });
    store = await openStoreFor(config);
  } catch (error) {
    io.err(`fedgate audit: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

async function openStoreFor(config: FedgateConfig): Promise<Store> {
  // Reading must not create an empty database where the config points wrong.
  if (config.mode === 'embedded' && !existsSync(config.sqlite.path)) throw new Error(`no store at ${config.sqlite.path} (is --config the deployment's?)`);
  return openStore(config.mode === 'embedded' ? { kind: 'sqlite', path: config.sqlite.path } : { kind: 'mongo', url: config.mongo.url, db: config.mongo.database });
}
