// The hostile values the fuzzer draws from: bodies, identifiers, path parameters and X-Matrix headers.
import type { Random } from './random';

const MiB = 1024 * 1024;

export interface HostileBody {
  kind: string;
  contentType?: string;
  body: string | Buffer;
}

/** Bodies that break JSON or canonical JSON in every way the issue lists; `big` allows the 10 MB ones. */
export function hostileBody(random: Random, valid: () => unknown, big: boolean): HostileBody {
  const json = (value: unknown) => JSON.stringify(value);
  const choices: Array<() => HostileBody> = [
    () => ({ kind: 'deep-array', body: '['.repeat(random.pick([600, 5_000, 100_000, 1_000_000])) }),
    () => ({ kind: 'deep-object', body: '{"a":'.repeat(random.pick([200, 600, 20_000])) + '1' + '}'.repeat(200) }),
    () => ({ kind: 'huge-number', body: json(valid()).replace(/^\{/, `{"n":${random.pick(['1e400', '-1e400', '18446744073709551616', '9007199254740993', '-0', '1.5', '0.1e-999'])},`) }),
    () => ({ kind: 'lone-surrogate', body: json(valid()).replace(/^\{/, `{"s":"\\ud800${random.pick(['', 'x', '\\udc00\\udc00'])}","\\udfff":1,`) }),
    () => ({ kind: 'duplicate-keys', body: json(valid()).replace(/^\{/, '{"type":"m.room.message","type":"m.room.create","content":{},"content":[],') }),
    () => ({ kind: 'truncated', body: json(valid()).slice(0, Math.max(1, random.int(json(valid()).length))) }),
    () => ({ kind: 'wrong-type', contentType: random.pick(['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/octet-stream', '', 'application/json, text/html', 'image/png']), body: json(valid()) }),
    () => ({ kind: 'invalid-utf8', body: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}')]) }),
    () => ({ kind: 'not-object', body: random.pick(['[]', 'null', '"x"', '1', 'true', '[{}]', '{}']) }),
    () => ({ kind: 'prototype-keys', body: json(valid()).replace(/^\{/, '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},') }),
    () => ({ kind: 'wrong-field-types', body: json(mangle(random, valid())) }),
    () => ({ kind: 'empty', body: '' }),
    () => ({ kind: 'binary', body: Buffer.from(Array.from({ length: 256 }, () => random.int(256))) }),
    () => ({ kind: 'valid', body: json(valid()) }),
  ];
  if (big && random.chance(0.5)) {
    return random.pick([
      () => ({ kind: 'ten-megabytes', body: json({ pad: 'x'.repeat(10 * MiB) }) }),
      () => ({ kind: 'ten-megabytes-deep', body: '['.repeat(10 * MiB) }),
    ])();
  }
  return random.pick(choices)();
}

/** The same shape with wrong types, absurd sizes and nulls in place of some fields. */
function mangle(random: Random, value: unknown, depth = 0): unknown {
  if (depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => mangle(random, v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = random.chance(0.3) ? random.pick([null, 0, -1, 2 ** 60, '', 'x'.repeat(70_000), [], {}, true, [[[[]]]], { $ne: null }]) : mangle(random, v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Path parameters: traversal, encodings, absurd lengths, Matrix sigils in the wrong places. */
export function hostileId(random: Random, plausible: string): string {
  return random.pick([
    () => plausible,
    () => '../../../../etc/passwd',
    () => '..%2F..%2F..%2Fetc%2Fpasswd',
    () => '%2e%2e%2f%2e%2e%2f',
    () => '%00',
    () => '%ZZ',
    () => '%',
    () => 'x'.repeat(random.pick([101, 1024, 1025, 5000])),
    () => encodeURIComponent('!' + 'a'.repeat(300) + ':' + 'b'.repeat(300)),
    () => encodeURIComponent('$' + random.string(43)),
    () => encodeURIComponent('@' + random.string(8) + ':' + random.string(6) + '.invalid'),
    () => encodeURIComponent('\u0000\u202e\ud83d\ude00 \n\r'),
    () => '%ED%A0%80',
    () => '',
    () => encodeURIComponent(random.string(20, '!@#$%^&*()[]{};:\'",<>?/\\|`~ ')),
  ])();
}

/** X-Matrix Authorization headers: missing, malformed, forged (unknown origins), oversized. */
export function hostileAuthorization(random: Random, destination: string): string | undefined {
  const sig = random.string(86, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  const origin = random.pick([
    `forged-${random.string(10)}.invalid`,
    `localhost:${1 + random.int(65535)}`,
    `127.0.0.1:${1 + random.int(65535)}`,
    '[::1]:1',
    random.string(300) + '.example',
    'bad name',
    '',
  ]);
  return random.pick([
    () => undefined,
    () => `X-Matrix origin="${origin}",destination="${destination}",key="ed25519:${random.string(6)}",sig="${sig}"`,
    () => `X-Matrix origin=${origin},key="ed25519:a",sig="${sig}"`,
    () => `X-Matrix origin="${origin}",destination="elsewhere.example",key="ed25519:a",sig="${sig}"`,
    () => `X-Matrix origin="${origin}"`,
    () => 'X-Matrix ' + 'origin="a",'.repeat(500),
    () => `X-Matrix origin="${origin}",key="ed25519:a",sig="${sig}",origin="other.example"`,
    () => `Bearer ${random.string(40)}`,
    () => 'X-Matrix',
    () => `X-Matrix origin="\\"${origin}",key="\\`,
    () => `x-matrix ORIGIN="${origin}",KEY="ed25519:a",SIG="${sig}"`,
    () => `X-Matrix origin="${origin}",key="ed25519:a",sig="${'A'.repeat(8_000)}"`,
  ])();
}
