// The canonical texts a received event's checks measure and hash — the whole event (for the size limit), what the
// content hash covers, what signatures and the reference hash cover — built from one serialisation of its members
// instead of one full serialisation each (issue 19: four per PDU before).
import { canonicalKeyOrder, canonicalMembers } from './canonical-json';
import type { RoomVersionRules } from './room-versions';

/**
 * One serialisation of an event's members, made by `eventTexts`. A snapshot: a text built from it reuses a member
 * only where the event it is asked about holds the very same value (the same object, or an equal primitive) under
 * that key, so the wire form or redacted copy of the event reuse it, another event does not. Do not change the
 * event's objects in place between.
 */
export interface EventTexts {
  readonly event: Readonly<Record<string, unknown>>;
  /** The room version, and its canonical JSON rules, that wrote the members. */
  readonly roomVersion: string;
  readonly strict: boolean;
  /** UTF-8 bytes of the canonical JSON of the whole event as given (`unsigned` and `signatures` included). */
  readonly size: number;
  readonly members: ReadonlyMap<string, string>;
}

/** Throws CanonicalJsonError as canonicalJson(event) would. */
export function eventTexts(event: Record<string, unknown>, rules: RoomVersionRules): EventTexts {
  const members = canonicalMembers(event, { strict: rules.strictCanonicalJson });
  let size = members.size === 0 ? 2 : 1 + members.size;
  for (const text of members.values()) size += Buffer.byteLength(text, 'utf8');
  return { event, roomVersion: rules.id, strict: rules.strictCanonicalJson, size, members };
}

/**
 * Canonical JSON of `object` without the keys in `skip`, reusing the members `texts` holds for the same values.
 * Equal to canonicalJson of that object.
 */
export function canonicalTextOf(object: Record<string, unknown>, skip: ReadonlySet<string>, rules: RoomVersionRules, texts: EventTexts): string {
  if (texts.roomVersion !== rules.id || texts.strict !== rules.strictCanonicalJson) throw new Error(`event texts of room version ${texts.roomVersion} used for room version ${rules.id}`);
  const keys: string[] = [];
  const fresh: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let anyFresh = false;
  let known = 0;
  for (const k of Object.keys(object)) {
    const value = object[k];
    if (value === undefined || skip.has(k)) continue;
    keys.push(k);
    const member = texts.members.has(k);
    if (member) known++;
    if (!(member && Object.hasOwn(texts.event, k) && texts.event[k] === value)) {
      fresh[k] = value;
      anyFresh = true;
    }
  }
  const freshMembers = anyFresh ? canonicalMembers(fresh, { strict: rules.strictCanonicalJson }) : undefined;
  // The members are in canonical order already: where every key is one of them, no sort is needed.
  const order = known === keys.length ? texts.members.keys() : canonicalKeyOrder(keys);
  const wanted = known === keys.length ? new Set(keys) : undefined;
  let out = '{';
  let first = true;
  for (const k of order) {
    if (wanted && !wanted.has(k)) continue;
    out += (first ? '' : ',') + (freshMembers?.get(k) ?? texts.members.get(k)!);
    first = false;
  }
  return out + '}';
}
