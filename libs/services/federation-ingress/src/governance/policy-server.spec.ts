import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSigningKey, redactedSigningText, serializeSigningKeyFile, SigningKey, VerifyKey, type JsonObject } from '@fedgate/protocol';
import { stateTupleKey, type Store } from '@fedgate/store';
import pino from 'pino';
import { auditOnceRecorded, INGRESS_NAME, refusedWith, ROOM_VERSION, seedRoom, signedEvent, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { ActivePolicy } from './active-policy';
import type { BusSubscription, CreateEventCommand, CreateEventReply } from '@fedgate/bus';
import { PolicyMetrics } from './policy-metrics';
import { PolicyServerAcls } from './policy-server-acls';

const PROTECTED = '!protected:ingress.test';
const OTHER_KEY_ROOM = '!otherkey:ingress.test';
const UNPROTECTED = '!plain:ingress.test';
const ELSEWHERE = '!elsewhere:ingress.test';
const SIGN = '/_matrix/policy/v1/sign';

const refusal = async (promise: Promise<unknown>) => {
  const error = await refusedWith(promise);
  return { status: error.status, errcode: error.errcode, error: String((error.body as { error?: unknown })?.error) };
};

const policyYaml = (otherServer: string, version = 1, protectedExtra = '') => `
version: ${version}
servers:
  - id: deny-other
    action: deny
    servers: ["${otherServer}"]
    reason: the operator does not federate with it
rooms:
  - id: protected-rooms
    rooms: ["!protected:*"]
    attachments: { mimetypes: ["image/*"], maxBytes: 1000000 }
    keywords: { deny: ["buy now"] }
${protectedExtra}
  - id: acl-rooms
    rooms: ["!acl*"]
    servers: { deny: ["deny-by-room.example"] }
    serverAcl: true
`;

describe('policy server: /_matrix/policy/v1/sign and /.well-known/matrix/policy_server', () => {
  let h: IngressHarness;
  let dir: string;
  let policyFile: string;
  let active: ActivePolicy;
  let protectedEvents: string[];
  let elsewhereEvents: string[];
  /** create-event commands (server ACLs) answered in place of state-resolver. */
  const sent: CreateEventCommand[] = [];
  let served: BusSubscription;
  let failNextAcl = false;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-policy-server-'));
    policyFile = path.join(dir, 'policy.yaml');
    writeFileSync(policyFile, policyYaml('placeholder.invalid'));
    h = await startIngress({ policyServer: { enabled: true, policyFile, keyPath: path.join(dir, 'policy_server.key'), reloadIntervalMs: 60_000 } });
    active = h.app.get(ActivePolicy);
    served = await h.bus.serve<CreateEventCommand, CreateEventReply>(h.topology.createEvent.command, (command) => {
      sent.push(command);
      if (failNextAcl) {
        failNextAcl = false;
        return { ok: false, errcode: 'M_UNKNOWN', error: 'the room service timed out' };
      }
      return { ok: true, eventId: `$acl${sent.length}` };
    });
    writeFileSync(policyFile, policyYaml(h.other.serverName));
    await active.reload();
    const naming = (key: string) => [{ type: 'm.room.policy', state_key: '', content: { via: INGRESS_NAME, public_keys: { ed25519: key } } }];
    ({ eventIds: protectedEvents } = await seedRoom(h, PROTECTED, [h.remote.user('alice')], naming(active.key!.publicKeyBase64)));
    await seedRoom(h, OTHER_KEY_ROOM, [h.remote.user('alice')], naming(generateSigningKey('x').publicKeyBase64));
    await seedRoom(h, UNPROTECTED, [h.remote.user('alice')]);
    ({ eventIds: elsewhereEvents } = await seedRoom(h, ELSEWHERE, [h.remote.user('alice')]));
  }, 60_000);

  afterAll(async () => {
    await served.stop();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (fields: JsonObject, signer = h.remote) =>
    signedEvent({ room_id: PROTECTED, type: 'm.room.message', sender: signer.user('alice'), depth: 20, prev_events: [protectedEvents.at(-1)!], content: { msgtype: 'm.text', body: 'hello' }, ...fields }, signer.serverName, signer.key);
  const ask = (pdu: JsonObject, asker = h.remote) => asker.client().postJson<Record<string, Record<string, string>>>(INGRESS_NAME, SIGN, pdu);
  const metric = (rule: string, outcome: string) => h.app.get(PolicyMetrics).count(rule, outcome);

  it('publishes its own policy key, which is not the federation key', async () => {
    const { body } = await h.remote.client().getJson<{ public_keys: { ed25519: string } }>(INGRESS_NAME, '/.well-known/matrix/policy_server', { signed: false });
    expect(body.public_keys.ed25519).toBe(active.key!.publicKeyBase64);
    expect(body.public_keys.ed25519).not.toBe(h.identity.signingKey.publicKeyBase64);
  });

  it('signs an allowed event with ed25519:policy_server over the redacted event, audited and counted', async () => {
    const before = await metric('protected-rooms', 'sign');
    const { eventId, pdu } = event({});
    const { body } = await ask(pdu);
    const signature = body[INGRESS_NAME]!['ed25519:policy_server']!;
    expect(Object.keys(body)).toEqual([INGRESS_NAME]);
    const key = new VerifyKey('ed25519:policy_server', active.key!.publicKey);
    expect(key.verify(Buffer.from(redactedSigningText(pdu, ROOM_VERSION)), Buffer.from(signature, 'base64'))).toBe(true);
    const record = await auditOnceRecorded(h.store, (r) => r.eventId === eventId);
    expect(record).toMatchObject({ decision: 'signed', roomId: PROTECTED, sender: h.remote.user('alice'), server: h.remote.serverName, origin: h.remote.serverName, rule: 'protected-rooms', policyVersion: active.policy!.policyVersion, status: 200 });
    expect(await metric('protected-rooms', 'sign')).toBe(before + 1);
  });

  it('refuses a forbidden attachment with 400 M_FORBIDDEN naming no secret, audited with the rule', async () => {
    const { eventId, pdu } = event({ content: { msgtype: 'm.file', body: 'x.exe', url: 'mxc://a/b', info: { mimetype: 'application/x-msdownload', size: 10 } } });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_FORBIDDEN', error: expect.stringContaining('application/x-msdownload') });
    expect(await auditOnceRecorded(h.store, (r) => r.eventId === eventId)).toMatchObject({ decision: 'refused', rule: 'protected-rooms/attachments', outcome: 'rejected', reason: 'protected-rooms/attachments' });
    expect(await metric('protected-rooms/attachments', 'refuse')).toBe(1);
  });

  it('answers a denied server asking for itself with 403 M_FORBIDDEN', async () => {
    const { pdu } = event({}, h.other);
    expect(await refusal(ask(pdu, h.other))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(await metric('deny-other', 'refuse')).toBeGreaterThanOrEqual(1);
  });

  it("refuses a denied server's event when another server asks for it (a participant checking what it received)", async () => {
    const { eventId, pdu } = event({}, h.other);
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_FORBIDDEN' });
    expect(await auditOnceRecorded(h.store, (r) => r.eventId === eventId)).toMatchObject({ decision: 'refused', rule: 'deny-other', server: h.other.serverName, origin: h.remote.serverName });
  });

  it("signs another server's event for a server asking again, when the event carries its sender server's signature", async () => {
    const creator = `@creator:${INGRESS_NAME}`;
    const { pdu } = signedEvent({ room_id: PROTECTED, type: 'm.room.message', sender: creator, depth: 20, prev_events: [protectedEvents.at(-1)!], content: { body: 'ours' } }, INGRESS_NAME, h.identity.signingKey);
    const { body } = await ask(pdu);
    expect(body[INGRESS_NAME]!['ed25519:policy_server']).toEqual(expect.any(String));
  });

  it("refuses an event in another server's name that its server did not sign (sender of another server than the origin)", async () => {
    // @mallory claims to be a user of the ingress server, but the event is signed by the asking server.
    const { pdu } = signedEvent({ room_id: PROTECTED, type: 'm.room.message', sender: `@mallory:${INGRESS_NAME}`, depth: 20, prev_events: [protectedEvents.at(-1)!], content: { body: 'x' } }, h.remote.serverName, h.remote.key);
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_FORBIDDEN', error: expect.stringContaining('not signed by its sender') });
    expect(await metric('unsigned_event', 'refuse')).toBe(1);
  });

  it('refuses an unauthenticated request with 401 M_UNAUTHORIZED', async () => {
    const { pdu } = event({});
    expect(await refusal(h.remote.client().postJson(INGRESS_NAME, SIGN, pdu, { signed: false }))).toMatchObject({ status: 401, errcode: 'M_UNAUTHORIZED' });
  });

  it.each([
    ['a room naming another policy key', OTHER_KEY_ROOM],
    ['a room without a policy server', UNPROTECTED],
    ['an unknown room', '!unknown:ingress.test'],
  ])('answers 404 M_NOT_FOUND for %s', async (_what, roomId) => {
    const { pdu } = event({ room_id: roomId, prev_events: [] });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
  });

  it('answers 404 M_NOT_FOUND for a room naming us where no user of ours is joined any more (the spec gives the policy server that say)', async () => {
    const naming = [{ type: 'm.room.policy', state_key: '', content: { via: INGRESS_NAME, public_keys: { ed25519: active.key!.publicKeyBase64 } } }];
    const roomId = '!left:ingress.test';
    await seedRoom(h, roomId, [h.remote.user('alice')], naming);
    const { pdu } = event({ room_id: roomId, prev_events: [] });
    expect((await ask(pdu)).body[INGRESS_NAME]).toBeDefined();
    await h.store.rooms.setJoinedServers(roomId, [h.remote.serverName]);
    expect(await refusal(ask(pdu))).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
  });

  it("answers 403 M_FORBIDDEN to a server the room's server ACL denies", async () => {
    const roomId = '!protected-acl-denied:ingress.test';
    const naming = { type: 'm.room.policy', state_key: '', content: { via: INGRESS_NAME, public_keys: { ed25519: active.key!.publicKeyBase64 } } };
    const acl = { type: 'm.room.server_acl', state_key: '', content: { allow: ['*'], deny: [h.remote.serverName.split(':')[0]!] } };
    await seedRoom(h, roomId, [], [naming, acl]);
    const { pdu } = event({ room_id: roomId, prev_events: [] });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN', error: expect.stringContaining('server ACL') });
    expect(await metric('server_acl', 'refuse')).toBe(1);
  });

  it('refuses an event whose room_id lies: it names the protected room but follows events of another room', async () => {
    const { pdu } = event({ prev_events: [elsewhereEvents.at(-1)!] });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_FORBIDDEN', error: expect.stringContaining('another room') });
  });

  // (A body over the federation listener's 512 KiB limit is refused 413 M_TOO_LARGE before parsing; the
  // harness's listener is wider, so test/e2e/policy-server-two-fedgates.spec.ts checks that on a gateway.)
  it('refuses an event over the 64 KiB PDU limit with 400 M_BAD_JSON', async () => {
    const { pdu } = event({ content: { msgtype: 'm.text', body: 'x'.repeat(70_000) } });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON', error: expect.stringContaining('65536') });
  });

  it('refuses the m.room.policy state event itself, which the spec says is never asked for', async () => {
    const { pdu } = event({ type: 'm.room.policy', state_key: '', content: { via: 'x' } });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
  });

  it('refuses a body that is not a PDU', async () => {
    expect(await refusal(h.remote.client().postJson(INGRESS_NAME, SIGN, [1, 2] as never))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
    const { pdu } = event({});
    delete pdu.hashes;
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
  });

  it('turns the policy into m.room.server_acl in opted-in rooms, sent by a local member with the power, once per policy version', async () => {
    {
      await seedRoom(h, '!acl:ingress.test', [h.remote.user('alice')]);
      const matching = { allow: ['*'], deny: ['deny-by-room.example'], allow_ip_literals: true };
      await seedRoom(h, '!acl-done:ingress.test', [h.remote.user('alice')], [{ type: 'm.room.server_acl', state_key: '', content: matching }]);
      await seedRoom(h, '!acl-powerless:ingress.test', [h.remote.user('alice')], [{ type: 'm.room.power_levels', state_key: '', content: { users: { [h.remote.user('alice')]: 100 }, state_default: 50 } }]);
      const outcomes = await h.app.get(PolicyServerAcls).applyAll();
      expect(outcomes).toEqual(
        expect.arrayContaining([
          { roomId: '!acl:ingress.test', outcome: 'sent', eventId: '$acl1', rule: 'acl-rooms' },
          { roomId: '!acl-done:ingress.test', outcome: 'unchanged', reason: expect.any(String) },
          { roomId: '!acl-powerless:ingress.test', outcome: 'failed', reason: expect.stringContaining('power level 50') },
        ]),
      );
      // The other server's name carries a port, which ACLs cannot express: left out, not turned into a wrong glob.
      expect(sent).toEqual([{ roomId: '!acl:ingress.test', sender: `@creator:${INGRESS_NAME}`, type: 'm.room.server_acl', stateKey: '', content: matching, txnId: expect.stringMatching(/^policy-acl-[0-9a-f]{32}$/) }]);
      const [record] = await h.store.audit.query({ roomId: '!acl:ingress.test', rule: 'acl-rooms' });
      expect(record).toMatchObject({ reason: 'server_acl_from_policy', eventId: '$acl1', policyVersion: active.policy!.policyVersion });
    }
  });

  it('retries a server ACL whose command failed under the same transaction ID (so a late success is not sent twice)', async () => {
    await seedRoom(h, '!acl-retry:ingress.test', [h.remote.user('alice')]);
    const acls = h.app.get(PolicyServerAcls);
    const before = sent.length;
    failNextAcl = true;
    const first = await acls.applyAll();
    expect(first).toEqual(expect.arrayContaining([{ roomId: '!acl-retry:ingress.test', outcome: 'failed', reason: expect.stringContaining('timed out') }]));
    const second = await acls.applyAll();
    expect(second).toEqual(expect.arrayContaining([expect.objectContaining({ roomId: '!acl-retry:ingress.test', outcome: 'sent' })]));
    const forRoom = sent.slice(before).filter((c) => c.roomId === '!acl-retry:ingress.test');
    expect(forRoom).toHaveLength(2);
    expect(forRoom[1]!.txnId).toBe(forRoom[0]!.txnId);
  });

  it('writes the audit record of an ACL we sent whose record a crash lost (the ACL event and the record are two writes)', async () => {
    const content = { allow: ['*'], deny: ['deny-by-room.example'], allow_ip_literals: true };
    const { stateEventIds } = await seedRoom(h, '!acl-crashed:ingress.test', [h.remote.user('alice')], [{ type: 'm.room.server_acl', state_key: '', content }]);
    const aclEventId = stateEventIds.get(stateTupleKey('m.room.server_acl', ''))!;
    expect(await h.store.audit.query({ roomId: '!acl-crashed:ingress.test' })).toEqual([]);
    await h.app.get(PolicyServerAcls).applyAll();
    const [record] = await h.store.audit.query({ roomId: '!acl-crashed:ingress.test', reason: 'server_acl_from_policy' });
    expect(record).toMatchObject({ eventId: aclEventId, rule: 'acl-rooms', details: { recovered: true } });
    await h.app.get(PolicyServerAcls).applyAll();
    expect(await h.store.audit.query({ roomId: '!acl-crashed:ingress.test', reason: 'server_acl_from_policy' })).toHaveLength(1);
  });

  it('applies a changed policy file at run time, and refuses a bad one keeping the old, with the reason audited', async () => {
    const old = active.policy!.policyVersion;
    writeFileSync(policyFile, policyYaml(h.other.serverName, 2, '    eventTypes: { deny: ["m.room.message"] }'));
    const aclsBefore = sent.length;
    expect(await active.reload()).toMatchObject({ outcome: 'applied' });
    const applied = active.policy!.policyVersion;
    // A new policy version brings the opted-in rooms' ACLs in line again (here the fake room service stored none).
    while (sent.length === aclsBefore) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent.at(-1)!.txnId).not.toBe(sent[aclsBefore - 1]!.txnId);
    expect(applied).not.toBe(old);
    const { eventId, pdu } = event({ content: { body: 'after the change' } });
    expect(await refusal(ask(pdu))).toMatchObject({ status: 400, errcode: 'M_FORBIDDEN' });
    expect(await auditOnceRecorded(h.store, (r) => r.eventId === eventId)).toMatchObject({ rule: 'protected-rooms/eventTypes', policyVersion: applied });

    writeFileSync(policyFile, 'version: 3\nservers: [{ id: broken, action: block, servers: [x] }]\n');
    const refused = await active.reload();
    expect(refused).toMatchObject({ outcome: 'refused', policyVersion: applied });
    expect(active.policy!.policyVersion).toBe(applied);
    const record = await auditOnceRecorded(h.store, (r) => r.decision === 'policy_reload' && r.outcome === 'rejected');
    expect(JSON.stringify(record.details)).toContain('servers.0.action must be one of allow, deny');

    writeFileSync(policyFile, policyYaml(h.other.serverName, 4));
    expect(await active.reloadIfChanged()).toMatchObject({ outcome: 'applied' });
    expect(await active.reloadIfChanged()).toBeUndefined();
  });
});

describe('policy server start', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-policy-start-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const federationKey = generateSigningKey('fed');
  const activePolicy = (policyFile: string, keyPath: string) =>
    new ActivePolicy(
      { enabled: true, policyFile, keyPath, reloadIntervalMs: 60_000 },
      {} as Store,
      { serverName: 'fg.test', signingKey: federationKey, allKeys: [federationKey] },
      pino({ level: 'silent' }),
      new PolicyMetrics(),
    );

  it('answers 404 M_UNRECOGNIZED when not enabled, before any authentication', async () => {
    const h = await startIngress();
    try {
      expect(await refusal(h.remote.client().postJson(INGRESS_NAME, SIGN, {}, { signed: false }))).toMatchObject({ status: 404, errcode: 'M_UNRECOGNIZED' });
      expect(await refusal(h.remote.client().getJson(INGRESS_NAME, '/.well-known/matrix/policy_server', { signed: false }))).toMatchObject({ status: 404 });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('does not start with an invalid policy file, naming the problem', async () => {
    const policyFile = path.join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'version: 1\nrooms: [{ id: r, rooms: ["*"], colour: red }]\n');
    await expect(activePolicy(policyFile, path.join(dir, 'k')).onModuleInit()).rejects.toThrow('unknown key colour');
  });

  it('generates its own key, and does not start with a key file of another version or holding the federation key', async () => {
    const policyFile = path.join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'version: 1\n');
    const fresh = activePolicy(policyFile, path.join(dir, 'fresh.key'));
    await fresh.onModuleInit();
    fresh.onModuleDestroy();
    expect(fresh.key!.keyId).toBe('ed25519:policy_server');
    const otherVersion = path.join(dir, 'other.key');
    writeFileSync(otherVersion, serializeSigningKeyFile([generateSigningKey('a_abcd')]));
    await expect(activePolicy(policyFile, otherVersion).onModuleInit()).rejects.toThrow('must be ed25519:policy_server');
    const federation = path.join(dir, 'federation.key');
    writeFileSync(federation, serializeSigningKeyFile([new SigningKey('policy_server', federationKey.exportSeed())]));
    await expect(activePolicy(policyFile, federation).onModuleInit()).rejects.toThrow('holds the federation signing key');
  });
});
