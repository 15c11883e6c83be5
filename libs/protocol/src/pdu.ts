// The shapes of persistent and ephemeral data units on the wire.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A JSON object: neither null nor an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Signatures: server name → key ID → unpadded base64 signature. */
export type Signatures = Record<string, Record<string, string>>;

/** An event reference in room versions 1–2: `[event_id, {sha256: hash}]`. */
export type V1EventReference = [string, { sha256?: string }];

/**
 * A PDU as it travels between servers. In room versions 1–2 `event_id` is part of the event and
 * `prev_events`/`auth_events` hold `[id, hashes]` pairs; from version 3 on they hold IDs only and the
 * event ID is derived from the event's reference hash. From version 12 the create event has no `room_id`.
 */
export interface Pdu {
  event_id?: string;
  room_id?: string;
  sender: string;
  origin?: string;
  origin_server_ts: number;
  type: string;
  state_key?: string;
  content: JsonObject;
  prev_events: Array<string | V1EventReference>;
  auth_events: Array<string | V1EventReference>;
  depth: number;
  hashes: { sha256: string } & Record<string, string>;
  signatures: Signatures;
  redacts?: string;
  unsigned?: JsonObject;
  [key: string]: unknown;
}

/** An EDU: ephemeral, not persisted in the room DAG. */
export interface Edu {
  edu_type: string;
  content: JsonObject;
}

/** The body of `PUT /_matrix/federation/v1/send/{txnId}`. */
export interface Transaction {
  origin: string;
  origin_server_ts: number;
  pdus: Pdu[];
  edus?: Edu[];
}
