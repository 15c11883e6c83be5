// Message schemas carried on the bus, one per subject family (see subjects.ts).
// PDUs and events stay plain JSON objects here: the protocol library owns their typed shapes.

export type JsonObject = Record<string, unknown>;

/** A PDU that passed ingress's stateless checks; message ID = event ID. */
export interface InboundPdu {
  eventId: string;
  roomId: string;
  roomVersion: string;
  origin: string;
  /** Transaction it arrived in, for the audit trail. */
  txnId: string;
  receivedAt: number;
  /** Content hash mismatch: the redacted form is what is carried. */
  redacted: boolean;
  pdu: JsonObject;
}

/** An inbound PDU set aside because handling it waits on a remote server; message ID = `parked:<event ID>:<origin>:<txnId>`. */
export interface ParkedPdu {
  inbound: InboundPdu;
  parkedAt: number;
  /** Why it was parked (what it waits on). */
  reason: string;
}

/** An EDU from a remote server; message ID = `${origin}:${txnId}:${index}`. */
export interface InboundEdu {
  origin: string;
  txnId: string;
  eduType: string;
  receivedAt: number;
  content: JsonObject;
}

export type EventOutcome = 'accepted' | 'soft-failed' | 'rejected';

/** A persisted event published by state-resolver; message ID = event ID. */
export interface RoomLogEntry {
  eventId: string;
  roomId: string;
  outcome: EventOutcome;
  /** Whether this server created it (federation-egress sends only these, plus backfill answers). */
  local: boolean;
  event: JsonObject;
  /** State keys changed by this event: `${type}\u0000${stateKey}` → new event ID (null when removed). */
  stateDelta: Record<string, string | null>;
  /** Servers with joined members at this event: the destinations for an outgoing event. */
  joinedServers: string[];
  /** Servers that hold this event already and are not sent it (the resident that accepted our join in send_join). */
  heldBy?: string[];
  streamOrdering?: number;
  /**
   * Redactions applied by this commit: the event itself when it is a redaction applied to its target, and
   * earlier redactions of this event that apply now it is here. A redaction not listed is not applied (yet).
   */
  redactionsApplied?: string[];
}

/** Command to state-resolver: build, authorize, persist and publish a local event (request/reply). */
export interface CreateEventCommand {
  roomId: string;
  sender: string;
  type: string;
  stateKey?: string;
  content: JsonObject;
  /** Client transaction ID, so a retried command returns the same event. */
  txnId?: string;
}

export type CreateEventReply =
  /** `roomId`: the event's room; for `m.room.create`, the new room's ID (v12: derived from the create event). */
  | { ok: true; eventId: string; roomId?: string }
  | { ok: false; errcode: string; error: string; status?: number };

/** One item for a destination's durable queue; message ID = `${destination}:${eventId or eduId}`. */
export type EgressEntry =
  | { kind: 'pdu'; destination: string; roomId: string; eventId: string; enqueuedAt: number }
  | { kind: 'edu'; destination: string; eduType: string; eduId: string; content: JsonObject; enqueuedAt: number };

/** One event for an application service's push queue; message ID = `${appserviceId}:${eventId}`. */
export interface AppServicePush {
  appserviceId: string;
  roomId: string;
  /** For ephemeral items: a unique ID of the push (typing, receipt and presence have no event ID). */
  eventId: string;
  /** Client format. */
  event: JsonObject;
  /** Room event (default), ephemeral event (typing, receipt, presence) or to-device message, the last two for `receive_ephemeral` services. */
  kind?: 'event' | 'ephemeral' | 'to_device' | 'device_list';
}

/** What the bus records when a message cannot be handled: never a silent drop. */
export interface DeadLetter {
  stream: string;
  subject: string;
  consumer: string;
  messageId: string;
  reason: string;
  deliveryCount: number;
  /** The original payload, base64 (it may not have been valid JSON). */
  dataBase64: string;
  headers: Record<string, string>;
  deadAt: number;
}

/** A refused command; `status` is the HTTP status ingress or chat-sync answers with. */
export interface CommandError {
  ok: false;
  errcode: string;
  error: string;
  status?: number;
}

export type MembershipKind = 'join' | 'leave' | 'knock';

/** Ingress → state-resolver: answer a remote `make_join` / `make_leave` / `make_knock` with an event template. */
export interface MakeMembershipCommand {
  roomId: string;
  userId: string;
  membership: MembershipKind;
  /** The requesting server (from X-Matrix). */
  origin: string;
  /** Room versions the remote supports (`ver` query parameters); absent means ["1"]. */
  supportedVersions?: string[];
}
export type MakeMembershipReply = { ok: true; roomVersion: string; event: JsonObject } | CommandError;

/**
 * Ingress → state-resolver: a remote `send_join` / `send_leave` / `send_knock`. Ingress has checked the
 * event's signatures and hash; state-resolver authorizes, persists and answers with what the spec returns.
 */
export interface SendMembershipCommand {
  roomId: string;
  eventId: string;
  membership: MembershipKind;
  origin: string;
  event: JsonObject;
  /** send_join v2 `omit_members` (partial state). */
  omitMembers?: boolean;
}
export type SendMembershipReply =
  | {
      ok: true;
      roomVersion: string;
      /** The event as persisted (for restricted joins: with our signature added). */
      event: JsonObject;
      /** send_join: state before the event and its auth chain; send_knock: stripped room state. */
      state?: JsonObject[];
      authChain?: JsonObject[];
      serversInRoom?: string[];
      membersOmitted?: boolean;
      knockRoomState?: JsonObject[];
    }
  | CommandError;

/** Ingress → state-resolver: `PUT /invite/{roomId}/{eventId}` (v2) for a local user; reply carries our signature. */
export interface ReceiveInviteCommand {
  roomId: string;
  eventId: string;
  roomVersion: string;
  origin: string;
  event: JsonObject;
  inviteRoomState: JsonObject[];
}
export type ReceiveInviteReply = { ok: true; event: JsonObject } | CommandError;

/**
 * chat-sync → state-resolver: a local user joins, leaves (e.g. rejects an invite) or knocks on a room this
 * server is not in, through `via` servers (make_* then send_*). For rooms this server is in, use CreateEventCommand.
 */
export interface RemoteMembershipCommand {
  roomId: string;
  userId: string;
  membership: MembershipKind;
  via: string[];
  content?: JsonObject;
}
export type RemoteMembershipReply = { ok: true; roomId: string; eventId: string } | CommandError;

/**
 * chat-sync → state-resolver: a client paged back to the oldest events this server holds of a room below
 * `atOrBelowDepth`; ask the servers in the room for what came before (`/backfill`). What comes back is stored as
 * history: it changes neither current state nor forward extremities and is not pushed to application services.
 */
export interface BackfillCommand {
  roomId: string;
  /** The depth the client's page starts at: backward extremities are looked for at or below it. */
  atOrBelowDepth: number;
  limit: number;
}
/** `stored`: events newly kept as history; `complete`: nothing earlier is missing (the create event is held). */
export type BackfillReply = { ok: true; stored: number; complete: boolean } | CommandError;

/**
 * Operator (`fedgate rooms repair`) → state-resolver: finish the local commits cut short (a crash, a store or
 * bus outage between the writes of one event) of one room, or of every room of one partition. Sent per
 * partition, so each replica answers for the rooms it owns.
 */
export interface RepairCommand {
  partition: number;
  /** Only this room (it must be of `partition`); else every room of the partition with a commit under way. */
  roomId?: string;
}
/** Per room: the events whose commit was finished (and published), and those dropped because their client transaction went to another event. */
export type RepairReply = { ok: true; rooms: Array<{ roomId: string; finished: string[]; abandoned: string[] }> } | CommandError;

/**
 * A local EDU for remote servers (typing, receipts, presence, device lists); egress computes the destinations
 * from `roomId` (servers joined to it) or takes `destinations`. Message ID = eduId.
 */
export interface OutboundEdu {
  eduId: string;
  eduType: string;
  content: JsonObject;
  roomId?: string;
  destinations?: string[];
  createdAt: number;
}

/**
 * Ingress → egress: an authenticated request from `serverName` arrived at `at` (ms), so egress may retry a
 * backed-off destination now. Message ID = `server-up:${serverName}:${bucket}` (ingress sends at most one per
 * server per bucket of 30 s).
 */
export interface ServerUp {
  serverName: string;
  at: number;
}
