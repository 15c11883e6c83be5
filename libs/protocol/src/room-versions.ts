// The one table of room-version behaviour. Everything that differs between versions reads it from here.

export type EventFormat = 'v1' | 'v2' | 'v3';
export type EventIdFormat = 'server-generated' | 'base64' | 'url-safe-base64';
export type RedactionAlgorithm = 'v1' | 'v6' | 'v8' | 'v9' | 'v11';
export type StateResolutionAlgorithm = 'v1' | 'v2' | 'v2.1';

export interface RoomVersionRules {
  readonly id: string;
  readonly stable: boolean;
  /** v1: `event_id` carried in the event, references are `[id, hashes]`; v2: IDs are hashes; v3: v2 plus the room ID is the create event's hash. */
  readonly eventFormat: EventFormat;
  readonly eventIdFormat: EventIdFormat;
  readonly redaction: RedactionAlgorithm;
  readonly stateResolution: StateResolutionAlgorithm;
  /** Reject floats and integers outside ±(2^53−1) in canonical JSON (v6+). */
  readonly strictCanonicalJson: boolean;
  /** Signing keys must be valid (`valid_until_ts`) at the event's `origin_server_ts` (v5+). */
  readonly enforceKeyValidity: boolean;
  /** `m.room.aliases` has its own auth rule (v1–v5). */
  readonly specialCaseAliasesAuth: boolean;
  /** A redaction is allowed when its event ID's domain matches the redacted event's (v1–v2). */
  readonly redactionAuthByEventIdDomain: boolean;
  /** The `notifications` key of power levels is checked on change (v6+). */
  readonly limitNotificationsPowerLevels: boolean;
  readonly knock: boolean;
  readonly restrictedJoin: boolean;
  readonly knockRestrictedJoin: boolean;
  /** Power-level values must be JSON integers, not strings (v10+). */
  readonly integerPowerLevels: boolean;
  /** The room creator is the create event's `sender` (v11+), not `content.creator`. */
  readonly creatorIsSender: boolean;
  /** `redacts` lives in the content of `m.room.redaction` (v11+). */
  readonly redactsInContent: boolean;
  /** Room ID is `!` + the create event's reference hash; creators (`sender` plus `additional_creators`) have infinite power (v12). */
  readonly roomIdFromCreateEvent: boolean;
  readonly additionalCreators: boolean;
  /**
   * The 255 limits on `sender`, `room_id`, `event_id`, `type` and `state_key` count UTF-8 bytes and an event over
   * them is refused outright (v11+). Before v11 the reference server counted code points, so events within 255 code
   * points but over 255 bytes exist in rooms: they are accepted as received and stored rejected.
   */
  readonly strictByteLimits: boolean;
}

const base: Omit<RoomVersionRules, 'id'> = {
  stable: true,
  eventFormat: 'v1',
  eventIdFormat: 'server-generated',
  redaction: 'v1',
  stateResolution: 'v1',
  strictCanonicalJson: false,
  enforceKeyValidity: false,
  specialCaseAliasesAuth: true,
  redactionAuthByEventIdDomain: true,
  limitNotificationsPowerLevels: false,
  knock: false,
  restrictedJoin: false,
  knockRestrictedJoin: false,
  integerPowerLevels: false,
  creatorIsSender: false,
  redactsInContent: false,
  roomIdFromCreateEvent: false,
  additionalCreators: false,
  strictByteLimits: false,
};

function derive(prev: RoomVersionRules, id: string, changes: Partial<RoomVersionRules>): RoomVersionRules {
  return Object.freeze({ ...prev, ...changes, id });
}

const v1 = Object.freeze({ ...base, id: '1' });
const v2 = derive(v1, '2', { stateResolution: 'v2' });
const v3 = derive(v2, '3', { eventFormat: 'v2', eventIdFormat: 'base64', redactionAuthByEventIdDomain: false });
const v4 = derive(v3, '4', { eventIdFormat: 'url-safe-base64' });
const v5 = derive(v4, '5', { enforceKeyValidity: true });
const v6 = derive(v5, '6', { redaction: 'v6', strictCanonicalJson: true, specialCaseAliasesAuth: false, limitNotificationsPowerLevels: true });
const v7 = derive(v6, '7', { knock: true });
const v8 = derive(v7, '8', { redaction: 'v8', restrictedJoin: true });
const v9 = derive(v8, '9', { redaction: 'v9' });
const v10 = derive(v9, '10', { knockRestrictedJoin: true, integerPowerLevels: true });
const v11 = derive(v10, '11', { redaction: 'v11', creatorIsSender: true, redactsInContent: true, strictByteLimits: true });
const v12 = derive(v11, '12', { eventFormat: 'v3', stateResolution: 'v2.1', roomIdFromCreateEvent: true, additionalCreators: true });

export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersionRules> = new Map(
  [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12].map((v) => [v.id, v]),
);

/** The version new rooms get unless asked otherwise, as the spec recommends. */
export const DEFAULT_ROOM_VERSION = '12';

export class UnsupportedRoomVersionError extends Error {
  readonly errcode = 'M_UNSUPPORTED_ROOM_VERSION';
  constructor(readonly roomVersion: unknown) {
    super(`unsupported room version ${JSON.stringify(roomVersion)}`);
    this.name = 'UnsupportedRoomVersionError';
  }
}

export function roomVersionRules(id: string): RoomVersionRules {
  const rules = ROOM_VERSIONS.get(id);
  if (!rules) throw new UnsupportedRoomVersionError(id);
  return rules;
}

export function isSupportedRoomVersion(id: unknown): id is string {
  return typeof id === 'string' && ROOM_VERSIONS.has(id);
}
