// Protocol primitives on a typical PDU: canonical JSON, event IDs, ed25519 through tweetnacl and node:crypto,
// and the target — verifying a PDU's signature through the library keeps up with a bare node:crypto loop.
import { verify as cryptoVerify } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  canonicalJson,
  computeContentHash,
  computeEventId,
  decodeBase64,
  publicKeyObject,
  redactedSigningText,
  signEvent,
  SigningKey,
  verifyEventSignatures,
} from '@fedgate/protocol';
import { fmt, measureRate, type BenchSuite, type Rate } from '../harness';

const VERSION = '10';
const SERVER = 'hs.example';

function typicalPdu(key: SigningKey) {
  const ref = (n: number) => '$' + Buffer.alloc(32, n).toString('base64url');
  return signEvent(
    {
      room_id: '!OGEhHVWSdvArJzumhm:matrix.org',
      sender: '@alice:hs.example',
      origin: SERVER,
      origin_server_ts: 1_700_000_000_123,
      type: 'm.room.message',
      content: {
        msgtype: 'm.text',
        body: 'Has anyone looked at the federation gateway numbers from last night? The p99 looks better than expected.',
        'm.mentions': { user_ids: ['@bob:other.example'] },
      },
      prev_events: [ref(1), ref(2)],
      auth_events: [ref(3), ref(4), ref(5), ref(6)],
      depth: 48_213,
      unsigned: { age_ts: 1_700_000_000_123 },
    },
    VERSION,
    SERVER,
    key,
  );
}

/**
 * Alternates the two loops (ABBA order, so load that drifts over time favours neither) and keeps each one's
 * best round: on a shared machine the best round is the one least disturbed by other processes.
 */
function bestOfAlternating(a: () => unknown, b: () => unknown, rounds = 10, ms = 250): [Rate, Rate] {
  let bestA: Rate | undefined;
  let bestB: Rate | undefined;
  for (let i = 0; i < rounds; i++) {
    const first = i % 2 === 0;
    const r1 = measureRate(first ? a : b, ms, 20);
    const r2 = measureRate(first ? b : a, ms, 20);
    const [ra, rb] = first ? [r1, r2] : [r2, r1];
    if (!bestA || ra.opsPerSec > bestA.opsPerSec) bestA = ra;
    if (!bestB || rb.opsPerSec > bestB.opsPerSec) bestB = rb;
  }
  return [bestA!, bestB!];
}

const suite: BenchSuite = {
  name: 'protocol',
  async run() {
    const key = new SigningKey('bench', Buffer.alloc(32, 42));
    const pdu = typicalPdu(key);
    const canonical = canonicalJson(pdu);
    const signedBytes = Buffer.from(redactedSigningText(pdu, VERSION), 'utf8');
    const signature = decodeBase64(pdu.signatures[SERVER][key.keyId]);
    const naclPair = nacl.sign.keyPair.fromSeed(Buffer.alloc(32, 42));
    const keyObject = publicKeyObject(key.publicKey);
    const verifyKey = key.verifyKey();
    const lookup = (server: string, keyId: string) => (server === SERVER && keyId === key.keyId ? verifyKey : undefined);

    const rows = [
      { name: 'canonical JSON of a typical PDU', value: fmt.rate(measureRate(() => canonicalJson(pdu), 500)), note: `${Buffer.byteLength(canonical)} bytes` },
      { name: 'content hash (SHA-256 of canonical JSON)', value: fmt.rate(measureRate(() => computeContentHash(pdu, VERSION), 500)) },
      { name: 'event ID (redact, canonical JSON, SHA-256, base64url)', value: fmt.rate(measureRate(() => computeEventId(pdu, VERSION), 500)) },
      { name: 'sign signed bytes, tweetnacl', value: fmt.rate(measureRate(() => nacl.sign.detached(signedBytes, naclPair.secretKey), 500, 5)) },
      { name: 'sign signed bytes, node:crypto', value: fmt.rate(measureRate(() => key.sign(signedBytes), 500, 20)) },
      { name: 'verify signed bytes, tweetnacl', value: fmt.rate(measureRate(() => nacl.sign.detached.verify(signedBytes, signature, naclPair.publicKey), 500, 5)) },
      { name: 'signEvent (hash, redact, sign)', value: fmt.rate(measureRate(() => signEvent(pdu, VERSION, SERVER, key), 500, 20)) },
    ];

    const [bare, library] = bestOfAlternating(
      () => cryptoVerify(null, signedBytes, keyObject, signature),
      () => verifyEventSignatures(pdu, VERSION, lookup),
    );
    const ratio = library.opsPerSec / bare.opsPerSec;
    rows.push({ name: 'verify, bare node:crypto loop (same key and bytes)', value: fmt.rate(bare), note: 'best of 10 alternating rounds' });
    rows.push({ name: 'verifyEventSignatures on the PDU (redact, canonical JSON, base64, verify)', value: fmt.rate(library), note: 'best of 10 alternating rounds' });

    return [
      {
        title: `typical PDU (room v${VERSION}, ${Buffer.byteLength(canonical)} bytes canonical)`,
        rows,
        targets: [{ description: 'library PDU signature verification ≥ 0.85 × bare node:crypto verify', met: ratio >= 0.85, measured: `${ratio.toFixed(3)} ×` }],
      },
    ];
  },
};
export default suite;
