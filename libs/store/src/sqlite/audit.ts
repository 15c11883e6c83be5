import type { JsonObject } from '@fedgate/protocol';
import type { AuditEntry, AuditQuery, AuditRecord, AuditRepository } from '../ports/audit';
import { orNull, type SqliteDatabase } from './database';
import type { SQLInputValue } from 'node:sqlite';

interface AuditRow {
  id: number;
  direction: AuditRecord['direction'];
  origin: string;
  destination: string;
  method: string;
  path: string;
  ts: number;
  duration_ms: number;
  status: number;
  outcome: AuditRecord['outcome'];
  reason: string | null;
  txn_id: string | null;
  pdu_count: number | null;
  edu_count: number | null;
  details: string | null;
  decision: AuditRecord['decision'] | null;
  room_id: string | null;
  event_id: string | null;
  sender: string | null;
  server: string | null;
  rule: string | null;
  policy_version: string | null;
}

export class SqliteAuditRepository implements AuditRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async append(e: AuditEntry): Promise<AuditRecord> {
    const r = this.db.run(
      `INSERT INTO store_audit (direction, origin, destination, method, path, ts, duration_ms, status, outcome, reason, txn_id, pdu_count, edu_count, details,
         decision, room_id, event_id, sender, server, rule, policy_version)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      e.direction,
      e.origin,
      e.destination,
      e.method,
      e.path,
      e.ts,
      e.durationMs,
      e.status,
      e.outcome,
      orNull(e.reason),
      orNull(e.txnId),
      orNull(e.pduCount),
      orNull(e.eduCount),
      e.details === undefined ? null : JSON.stringify(e.details),
      orNull(e.decision),
      orNull(e.roomId),
      orNull(e.eventId),
      orNull(e.sender),
      orNull(e.server),
      orNull(e.rule),
      orNull(e.policyVersion),
    );
    return { ...e, id: String(r.lastInsertRowid) };
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = ?`);
      params.push(value);
    };
    eq('direction', q.direction);
    eq('origin', q.origin);
    eq('destination', q.destination);
    eq('outcome', q.outcome);
    eq('reason', q.reason);
    eq('decision', q.decision);
    eq('room_id', q.roomId);
    eq('server', q.server);
    eq('rule', q.rule);
    if (q.sinceTs !== undefined) {
      where.push('ts >= ?');
      params.push(q.sinceTs);
    }
    if (q.untilTs !== undefined) {
      where.push('ts < ?');
      params.push(q.untilTs);
    }
    const sql = `SELECT * FROM store_audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ts DESC, id DESC LIMIT ?`;
    return this.db.all<AuditRow>(sql, ...params, q.limit ?? 100).map(toRecord);
  }

  async pruneBefore(ts: number): Promise<number> {
    return this.db.run('DELETE FROM store_audit WHERE ts < ?', ts).changes;
  }
}

function toRecord(r: AuditRow): AuditRecord {
  const record: AuditRecord = {
    id: String(r.id),
    direction: r.direction,
    origin: r.origin,
    destination: r.destination,
    method: r.method,
    path: r.path,
    ts: r.ts,
    durationMs: r.duration_ms,
    status: r.status,
    outcome: r.outcome,
  };
  if (r.reason !== null) record.reason = r.reason;
  if (r.txn_id !== null) record.txnId = r.txn_id;
  if (r.pdu_count !== null) record.pduCount = r.pdu_count;
  if (r.edu_count !== null) record.eduCount = r.edu_count;
  if (r.details !== null) record.details = JSON.parse(r.details) as JsonObject;
  if (r.decision !== null) record.decision = r.decision;
  if (r.room_id !== null) record.roomId = r.room_id;
  if (r.event_id !== null) record.eventId = r.event_id;
  if (r.sender !== null) record.sender = r.sender;
  if (r.server !== null) record.server = r.server;
  if (r.rule !== null) record.rule = r.rule;
  if (r.policy_version !== null) record.policyVersion = r.policy_version;
  return record;
}
