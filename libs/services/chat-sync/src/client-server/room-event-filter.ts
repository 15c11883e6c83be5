// The client-server RoomEventFilter (`filter` of `/context`): which events of a room a client wants. Parsed from
// the query parameter (JSON text) and checked field by field; a filter that is not JSON is an invalid parameter,
// one whose fields have the wrong types is bad JSON (both 400).
import { MatrixError } from '@fedgate/service-kit';

export interface RoomEventFilter {
  limit?: number;
  types?: string[];
  notTypes: string[];
  senders?: string[];
  notSenders: string[];
  rooms?: string[];
  notRooms: string[];
  containsUrl?: boolean;
  lazyLoadMembers: boolean;
}

/** What the filter looks at of an event (client or federation form). */
export interface FilterableEvent {
  type: string;
  sender?: unknown;
  room_id?: unknown;
  content?: unknown;
}

/** Entries of one list at most: the filter is a query parameter, bounded by the URL, yet matched per event. */
const MAX_LIST = 200;

export const NO_FILTER: RoomEventFilter = { notTypes: [], notSenders: [], notRooms: [], lazyLoadMembers: false };

export function parseRoomEventFilter(text: unknown): RoomEventFilter {
  if (text === undefined) return NO_FILTER;
  if (typeof text !== 'string') throw MatrixError.invalidParam('filter must be a JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw MatrixError.invalidParam('filter is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw MatrixError.invalidParam('filter must be a JSON object');
  const fields = parsed as Record<string, unknown>;
  const limit = fields.limit;
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) throw MatrixError.badJson('filter.limit must be an integer greater than 0');
  const containsUrl = fields.contains_url;
  if (containsUrl !== undefined && typeof containsUrl !== 'boolean') throw MatrixError.badJson('filter.contains_url must be a boolean');
  const lazy = fields.lazy_load_members;
  if (lazy !== undefined && typeof lazy !== 'boolean') throw MatrixError.badJson('filter.lazy_load_members must be a boolean');
  const redundant = fields.include_redundant_members;
  if (redundant !== undefined && typeof redundant !== 'boolean') throw MatrixError.badJson('filter.include_redundant_members must be a boolean');
  const list = (name: string) => stringList(fields[name], name);
  return {
    ...(limit !== undefined ? { limit: limit as number } : {}),
    ...optional('types', list('types')),
    notTypes: list('not_types') ?? [],
    ...optional('senders', list('senders')),
    notSenders: list('not_senders') ?? [],
    ...optional('rooms', list('rooms')),
    notRooms: list('not_rooms') ?? [],
    ...(containsUrl !== undefined ? { containsUrl: containsUrl as boolean } : {}),
    lazyLoadMembers: lazy === true,
  };
}

/** Whether the filter lets the event through (`not_*` lists win over the others). */
export function filterMatches(filter: RoomEventFilter, event: FilterableEvent): boolean {
  const sender = typeof event.sender === 'string' ? event.sender : '';
  const roomId = typeof event.room_id === 'string' ? event.room_id : '';
  if (filter.notTypes.some((pattern) => typeMatches(pattern, event.type))) return false;
  if (filter.types && !filter.types.some((pattern) => typeMatches(pattern, event.type))) return false;
  if (filter.notSenders.includes(sender)) return false;
  if (filter.senders && !filter.senders.includes(sender)) return false;
  if (filter.notRooms.includes(roomId)) return false;
  if (filter.rooms && !filter.rooms.includes(roomId)) return false;
  if (filter.containsUrl !== undefined) {
    const content = typeof event.content === 'object' && event.content !== null ? (event.content as Record<string, unknown>) : {};
    if ((typeof content.url === 'string') !== filter.containsUrl) return false;
  }
  return true;
}

/** Event type patterns may end in (or hold) `*`, matching any run of characters. */
function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const parts = pattern.split('*');
  if (!type.startsWith(parts[0]) || !type.endsWith(parts[parts.length - 1])) return false;
  let at = parts[0].length;
  const end = type.length - parts[parts.length - 1].length;
  for (const part of parts.slice(1, -1)) {
    const found = type.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return at <= end;
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw MatrixError.badJson(`filter.${name} must be an array of strings`);
  if (value.length > MAX_LIST) throw MatrixError.badJson(`filter.${name} has more than ${MAX_LIST} entries`);
  return value as string[];
}

function optional<K extends string>(key: K, value: string[] | undefined): { [P in K]?: string[] } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string[] };
}
