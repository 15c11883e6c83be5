// Issue 17, "Done when", for real: fedgate A is the policy server of a room (m.room.policy names it, with the key
// from its /.well-known/matrix/policy_server); fedgate B and a denied server are in the room. B asks A's /sign itself
// before sending its users' events (refusals reach B's client verbatim, nothing reaches A); A asks itself for its
// own users' events; events of the denied server are soft-failed on A and on B with the reason, the audit record
// and the metric on both sides; a join of the denied server after the room is protected is refused at send_join.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { verifyPolicyServerSignature, type Pdu } from '@fedgate/protocol';
import { stateMapKey } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { createTestCa, eventually, MaliciousHttpsServer, openInstanceStore, startFedgatePair, type FedgateInstance, type TestCertificateAuthority } from '@fedgate/testing';

const SIGN = '/_matrix/policy/v1/sign';
const root = path.resolve(__dirname, '..', '..');

describe('fedgate as a room policy server, with a second fedgate honouring it and a denied server', () => {
  let ca: TestCertificateAuthority;
  let a: FedgateInstance;
  let b: FedgateInstance;
  let evil: MaliciousHttpsServer;
  let evilJoined: Awaited<ReturnType<MaliciousHttpsServer['joinRoom']>>;
  let storeA: Store;
  let storeB: Store;
  let dir: string;
  let policyFile: string;
  let agent: Agent;
  let policyKey: string;
  let roomId: string;
  let alice: string;
  let bob: string;
  let latestEventId: string;

  const policy = (evilName: string, extra = '') => `
version: 1
servers:
  - id: deny-evil
    action: deny
    servers: ["${evilName}"]
    reason: not a partner
rooms:
  - id: partner-rooms
    rooms: ["*"]
    attachments: { mimetypes: ["image/*", "application/pdf"], maxBytes: 10000000 }
${extra}`;
  const forbiddenFile = { msgtype: 'm.file', body: 'tool.exe', url: 'mxc://x/y', info: { mimetype: 'application/x-msdownload', size: 1000 } };

  const stored = async (store: Store, eventId: string) => (await eventually(() => store.events.get(eventId), (r) => r !== undefined))!;
  const signedByA = (pdu: Pdu) => verifyPolicyServerSignature(pdu, '10', a.serverName, policyKey);
  const metricsOf = async (instance: FedgateInstance) => (await fetch(`${instance.clientServerUrl}/metrics`)).text();
  /** What a client of `instance` is answered when it sends `content` as `user`. */
  const refusalOf = async (instance: FedgateInstance, user: string, content: Record<string, unknown>) =>
    instance.bridge!.asUser(user).sendMessage(roomId, content as never).then(
      () => undefined,
      (err: { errcode?: string; httpStatus?: number; data?: { error?: string } }) => ({ errcode: err.errcode, status: err.httpStatus, error: err.data?.error }),
    );

  beforeAll(async () => {
    ca = createTestCa();
    agent = new Agent({ connect: { ca: ca.certPem } });
    evil = await MaliciousHttpsServer.start(ca);
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-policy-e2e-'));
    policyFile = path.join(dir, 'policy.yaml');
    writeFileSync(policyFile, policy(evil.name));
    [a, b] = await startFedgatePair(
      { shape: 'embedded', ca, name: 'pa', config: { policyServer: { enabled: true, policyFile, reloadIntervalMs: 300 } } },
      { shape: 'embedded', ca, name: 'pb' },
    );
    [storeA, storeB] = await Promise.all([openInstanceStore(a), openInstanceStore(b)]);
    alice = await a.bridge!.registerVirtualUser('pachat_alice');
    bob = await b.bridge!.registerVirtualUser('pbchat_bob');
  }, 240_000);

  afterAll(async () => {
    await Promise.all([storeA?.close(), storeB?.close()]);
    await evil?.stop();
    await Promise.all([a?.destroy(), b?.destroy()]);
    await agent?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("A publishes its policy key; the room names A; B's join through send_join is signed by A, asked by A of itself", async () => {
    const res = await request(`https://${a.serverName}/.well-known/matrix/policy_server`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    policyKey = ((await res.body.json()) as { public_keys: { ed25519: string } }).public_keys.ed25519;
    ({ room_id: roomId } = await a.bridge!.asUser(alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never));
    // The denied server joins before the room names a policy server (nothing to ask yet): it can send events later.
    evilJoined = await evil.joinRoom(a.serverName, roomId);
    await a.bridge!.asUser(alice).sendStateEvent(roomId, 'm.room.policy' as never, { via: a.serverName, public_keys: { ed25519: policyKey } } as never, '');
    await b.bridge!.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    const join = await a.bridge!.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', 30_000);
    expect(signedByA((await stored(storeA, join.event_id as string)).pdu)).toEqual({ valid: true });
  }, 60_000);

  it("B's user sends: B asks A's /sign itself, the event reaches A and A's appservice with A's signature", async () => {
    const { event_id } = await b.bridge!.asUser(bob).sendTextMessage(roomId, 'hello, policy server');
    expect(signedByA((await stored(storeB, event_id)).pdu)).toEqual({ valid: true });
    await a.bridge!.waitForEvent((e) => e.event_id === event_id, 30_000);
    expect(await stored(storeA, event_id)).toMatchObject({ status: 'accepted' });
    const [signed] = await eventually(() => storeA.audit.query({ decision: 'signed', server: b.serverName }), (r) => r.some((x) => x.eventId === event_id));
    expect(signed).toMatchObject({ origin: b.serverName, rule: 'partner-rooms', sender: bob });
    expect((await storeB.audit.query({ direction: 'out', destination: a.serverName, reason: 'policy_server_signed' })).some((r) => r.details?.eventId === event_id)).toBe(true);
    expect(await metricsOf(b)).toMatch(/fedgate_room_policy_server_events_total\{event="ours",outcome="signed"[^}]*\} [1-9]/);
  }, 60_000);

  it("B's user sends a forbidden attachment: refused at B's client-server API with A's errcode and error, and it never reaches A", async () => {
    expect(await refusalOf(b, bob, forbiddenFile)).toEqual({ errcode: 'M_FORBIDDEN', status: 400, error: expect.stringContaining('application/x-msdownload') });
    const [record] = await eventually(() => storeA.audit.query({ rule: 'partner-rooms/attachments', server: b.serverName }), (r) => r.length > 0);
    expect(record).toMatchObject({ decision: 'refused', roomId, sender: bob, origin: b.serverName, policyVersion: expect.stringMatching(/^1:/) });
    expect(await storeA.events.get(record!.eventId!)).toBeUndefined();
    expect(await storeB.events.get(record!.eventId!)).toBeUndefined();
    expect(await metricsOf(a)).toMatch(/fedgate_policy_decisions_total\{rule="partner-rooms\/attachments",outcome="refuse"[^}]*\} 1\n/);
    expect(await metricsOf(b)).toMatch(/fedgate_room_policy_server_events_total\{event="ours",outcome="refused"[^}]*\} 1\n/);
  }, 60_000);

  it("A's own user in a room naming A: A asks its own /sign (over federation), signs the allowed, refuses the forbidden at A's API", async () => {
    const { event_id } = await a.bridge!.asUser(alice).sendTextMessage(roomId, 'hello from the policy server itself');
    latestEventId = event_id;
    expect(signedByA((await stored(storeA, event_id)).pdu)).toEqual({ valid: true });
    // B gets it already signed: accepted without asking.
    expect(await stored(storeB, event_id)).toMatchObject({ status: 'accepted' });
    expect(await refusalOf(a, alice, forbiddenFile)).toEqual({ errcode: 'M_FORBIDDEN', status: 400, error: expect.stringContaining('application/x-msdownload') });
    expect(await storeA.audit.query({ rule: 'partner-rooms/attachments', server: a.serverName })).toEqual([expect.objectContaining({ decision: 'refused', origin: a.serverName, sender: alice })]);
  }, 60_000);

  it('events of the denied server are soft-failed on A and on B with the reason, the audit records and the metrics', async () => {
    const mallory = evil.evil.user('mallory');
    // After an event A and B both hold with its state (the denied server's join reached B as state, without it).
    const message = evil.evil.sign(
      {
        room_id: roomId, sender: mallory, type: 'm.room.message', content: { msgtype: 'm.text', body: 'spam' }, prev_events: [latestEventId], depth: 50,
        auth_events: [evilJoined.state.get(stateMapKey('m.room.create', ''))!, evilJoined.state.get(stateMapKey('m.room.power_levels', ''))!, evilJoined.join.eventId],
      },
      evilJoined.roomVersion,
    );
    // Asking for itself is refused outright (403), as the spec allows for a server the policy server will not serve.
    expect(await evil.request(a.serverName, 'POST', SIGN, message.pdu)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect((await evil.sendPdus(a.serverName, [message])).status).toBe(200);
    expect((await evil.sendPdus(b.serverName, [message])).status).toBe(200);
    for (const store of [storeA, storeB]) {
      const record = await eventually(() => store.events.get(message.eventId), (r) => r?.status === 'soft_failed', 30_000);
      expect(record!.reason).toMatch(new RegExp(`^policy_server: no ed25519:policy_server signature from .*, and asked again ${a.serverName} refused: M_FORBIDDEN .*not a partner`));
      const [softFailed] = await eventually(() => store.audit.query({ decision: 'soft_failed', server: evil.name }), (r) => r.some((x) => x.eventId === message.eventId));
      expect(softFailed).toMatchObject({ roomId, sender: mallory, rule: 'policy_server/M_FORBIDDEN', reason: 'policy_server_refused' });
    }
    // A decided twice with the rule: asked by itself (receiving from the denied server) and by B.
    const refused = await eventually(() => storeA.audit.query({ rule: 'deny-evil', decision: 'refused' }), (r) => r.length >= 3);
    expect(refused.map((r) => r.origin).sort()).toEqual([a.serverName, b.serverName, evil.name].sort());
    expect(await metricsOf(a)).toMatch(/fedgate_policy_decisions_total\{rule="deny-evil",outcome="refuse"[^}]*\} 3\n/);
    for (const instance of [a, b]) expect(await metricsOf(instance)).toMatch(/fedgate_room_policy_server_events_total\{event="received",outcome="refused"[^}]*\} 1\n/);
  }, 60_000);

  it('a join of the denied server once the room names A: send_join refuses it, soft-failed on A with the reason', async () => {
    await expect(evil.joinRoom(a.serverName, roomId, 'mallory2')).rejects.toThrow(/send_join: 403 .*not a partner/);
    const [softFailed] = await eventually(() => storeA.audit.query({ decision: 'soft_failed', server: evil.name }), (r) => r.some((x) => x.sender === evil.evil.user('mallory2')));
    expect(await storeA.events.get(softFailed!.eventId!)).toMatchObject({ status: 'soft_failed', reason: expect.stringContaining('not a partner') });
  }, 60_000);

  it('refuses a body over the federation listener limit with 413 M_TOO_LARGE before parsing it', async () => {
    const answer = await evil.request(a.serverName, 'POST', SIGN, { room_id: roomId, sender: bob, type: 'm.room.message', content: { body: 'x'.repeat(600 * 1024) } });
    expect(answer).toMatchObject({ status: 413, json: { errcode: 'M_TOO_LARGE' } });
  });

  it('takes a changed policy file without a restart, and `npx fedgate audit` exports the decisions as JSON lines', async () => {
    writeFileSync(policyFile, policy(evil.name, '    keywords: { deny: ["forbidden phrase"] }\n'));
    await eventually(() => storeA.audit.query({ decision: 'policy_reload' }), (r) => r.some((x) => x.outcome === 'ok'), 30_000);
    expect(await metricsOf(a)).toMatch(/fedgate_policy_reloads_total\{outcome="applied"[^}]*\} 1\n/);
    const phrase = { msgtype: 'm.text', body: 'a Forbidden Phrase here' };
    expect(await refusalOf(b, bob, phrase)).toMatchObject({ errcode: 'M_FORBIDDEN', status: 400 });

    const node = path.join(root, 'node_modules', '.bin', 'node');
    const run = spawnSync(node, [path.join(root, 'tools', 'cli', 'bin', 'fedgate.js'), 'audit', '--config', a.configPath, '--room', roomId, '--policy'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.rule)).toEqual(expect.arrayContaining(['partner-rooms', 'partner-rooms/attachments', 'deny-evil', 'partner-rooms/keywords', 'policy_server/M_FORBIDDEN']));
    const refusedByKeyword = lines.find((l) => l.rule === 'partner-rooms/keywords')!;
    expect(refusedByKeyword).toMatchObject({ decision: 'refused', sender: bob });
    expect(refusedByKeyword.policy_version).not.toBe(lines.find((l) => l.rule === 'partner-rooms')!.policy_version);

    // `npx fedgate policy test` with the deployment's config names the same rule for the same content.
    const eventFile = path.join(dir, 'event.json');
    writeFileSync(eventFile, JSON.stringify({ room_id: roomId, sender: bob, type: 'm.room.message', content: phrase }));
    const tested = spawnSync(node, [path.join(root, 'tools', 'cli', 'bin', 'fedgate.js'), 'policy', 'test', eventFile, '--config', a.configPath, '--json'], { cwd: root, encoding: 'utf8' });
    expect(tested.status).toBe(3);
    expect(JSON.parse(tested.stdout)).toMatchObject({ outcome: 'refuse', rule: 'partner-rooms/keywords', policy_version: refusedByKeyword.policy_version });
  }, 60_000);
});
