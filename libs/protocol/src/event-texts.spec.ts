import fc from 'fast-check';
import { canonicalJson, CanonicalJsonError } from './canonical-json';
import { computeContentHashBytes, computeEventId, eventIdFromSigningText, redactedSigningText } from './event-signing';
import { canonicalTextOf, eventTexts } from './event-texts';
import { roomVersionRules } from './room-versions';

const VERSIONS = ['1', '3', '5', '6', '10', '11', '12'];

// Event-shaped objects: the top-level keys the hashes and redaction care about, and anything else (odd keys included).
const eventArbitrary = fc.record(
  {
    type: fc.constantFrom('m.room.message', 'm.room.member', 'm.room.create', 'm.room.power_levels', 'm.room.join_rules', 'x.custom'),
    state_key: fc.string(),
    sender: fc.constant('@a:remote.test'),
    room_id: fc.constant('!r:remote.test'),
    event_id: fc.constant('$e:remote.test'),
    content: fc.dictionary(fc.constantFrom('membership', 'body', 'users', 'join_rule', 'allow', 'creator', 'third_party_invite', '__proto__', '\ud83d\ude00', 'ü'), fc.jsonValue({ maxDepth: 2 })),
    hashes: fc.record({ sha256: fc.base64String() }),
    signatures: fc.dictionary(fc.domain(), fc.dictionary(fc.constant('ed25519:k'), fc.base64String())),
    unsigned: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })),
    depth: fc.nat(),
    origin_server_ts: fc.nat(),
    prev_events: fc.array(fc.constant('$p')),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ['type', 'content'] },
);

// JSON.parse keeps "__proto__" as an own key; fast-check's dictionaries do too.
const integral = (value: unknown): boolean => {
  try {
    canonicalJson(value, { strict: true });
    return true;
  } catch {
    return false;
  }
};

describe('eventTexts (issue 19: one canonical serialisation of a received event for all its checks)', () => {
  it('gives the same size, content hash, signing text and event ID as serialising each form whole, in every room version', () => {
    fc.assert(
      fc.property(eventArbitrary, fc.constantFrom(...VERSIONS), (event, version) => {
        const rules = roomVersionRules(version);
        if (rules.strictCanonicalJson && !integral(event)) return;
        const texts = eventTexts(event, rules);
        expect(texts.size).toBe(Buffer.byteLength(canonicalJson(event, { strict: rules.strictCanonicalJson })));
        expect(computeContentHashBytes(event, rules, texts)).toEqual(computeContentHashBytes(event, rules));
        expect(redactedSigningText(event, rules, texts)).toBe(redactedSigningText(event, rules));
        if (rules.eventIdFormat !== 'server-generated') expect(eventIdFromSigningText(event, rules, redactedSigningText(event, rules, texts))).toBe(computeEventId(event, rules));
      }),
      { numRuns: 300 },
    );
  });

  it('answers for another event only with its own members: a different value under a key is serialised afresh', () => {
    const rules = roomVersionRules('10');
    const a = { type: 'm.room.message', content: { body: 'one' }, depth: 1, hashes: { sha256: 'x' } };
    const texts = eventTexts(a, rules);
    const b = { ...a, content: { body: 'two' }, depth: 2 };
    expect(canonicalTextOf(b, new Set(), rules, texts)).toBe(canonicalJson(b));
    expect(computeContentHashBytes(b, rules, texts)).toEqual(computeContentHashBytes(b, rules));
  });

  it('refuses to be used under another room version or other canonical JSON rules', () => {
    const event = { type: 'm.room.message', content: { body: 'one' } };
    const texts = eventTexts(event, roomVersionRules('10'));
    expect(() => canonicalTextOf(event, new Set(), roomVersionRules('11'), texts)).toThrow(/room version 10 used for room version 11/);
    expect(() => canonicalTextOf(event, new Set(), { ...roomVersionRules('10'), strictCanonicalJson: false }, texts)).toThrow();
  });

  it('throws what canonicalJson throws for the whole event, with the same path', () => {
    const event = { type: 'm.room.message', content: { body: 'one', n: 1.5 } };
    const expected = (() => {
      try {
        canonicalJson(event);
      } catch (e) {
        return e as CanonicalJsonError;
      }
    })()!;
    expect(() => eventTexts(event, roomVersionRules('10'))).toThrow(expected.message);
    expect(eventTexts(event, roomVersionRules('5')).size).toBe(Buffer.byteLength(canonicalJson(event, { strict: false })));
  });
});
