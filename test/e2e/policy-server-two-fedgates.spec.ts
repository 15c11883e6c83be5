// Issue 17, being a policy server, end to end: fedgate A is the policy server of a room (m.room.policy names it,
// with the key from its /.well-known/matrix/policy_server); fedgate B and a denied server are in the room. The
// participant side (asking before sending, soft-failing without a signature) is another branch: here the test
// asks A's /sign for each event exactly as a participant would (X-Matrix as the asking server, the full PDU).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { buildXMatrixHeader, parseSigningKeyFile, redactedSigningText, VerifyKey, type SigningKey } from '@fedgate/protocol';
import { stateMapKey } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { createTestCa, eventually, MaliciousHttpsServer, openInstanceStore, startFedgatePair, type FedgateInstance, type TestCertificateAuthority } from '@fedgate/testing';

const SIGN = '/_matrix/policy/v1/sign';
const root = path.resolve(__dirname, '..', '..');

describe('fedgate as a room policy server, with a second fedgate and a denied server', () => {
  let ca: TestCertificateAuthority;
  let a: FedgateInstance;
  let b: FedgateInstance;
  let evil: MaliciousHttpsServer;
  let storeA: Store;
  let dir: string;
  let policyFile: string;
  let agent: Agent;
  let bKey: SigningKey;
  let policyKey: string;
  let roomId: string;
  let alice: string;
  let bob: string;

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

  /** POST /sign on A as `origin` (signed with `key`), as a participant asks. */
  async function askA(pdu: unknown, origin: string, key: SigningKey): Promise<{ status: number; json: any }> {
    const authorization = buildXMatrixHeader({ method: 'POST', uri: SIGN, origin, destination: a.serverName, content: pdu }, key);
    const res = await request(`https://${a.serverName}${SIGN}`, { method: 'POST', body: JSON.stringify(pdu), headers: { authorization, 'content-type': 'application/json' }, dispatcher: agent });
    return { status: res.statusCode, json: await res.body.json() };
  }
  const pduAtA = async (eventId: string) => (await eventually(() => storeA.events.get(eventId), (r) => r !== undefined))!.pdu;
  const metricsOfA = async () => (await fetch(`${a.clientServerUrl}/metrics`)).text();

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
    storeA = await openInstanceStore(a);
    [bKey] = parseSigningKeyFile(readFileSync(path.join(b.dataDir, 'signing.key'), 'utf8')) as [SigningKey];
    alice = await a.bridge!.registerVirtualUser('pachat_alice');
    bob = await b.bridge!.registerVirtualUser('pbchat_bob');
  }, 240_000);

  afterAll(async () => {
    await storeA?.close();
    await evil?.stop();
    await Promise.all([a?.destroy(), b?.destroy()]);
    await agent?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('A publishes its policy key; a room names A as its policy server; B and the denied server join', async () => {
    const res = await request(`https://${a.serverName}/.well-known/matrix/policy_server`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    policyKey = ((await res.body.json()) as { public_keys: { ed25519: string } }).public_keys.ed25519;
    ({ room_id: roomId } = await a.bridge!.asUser(alice).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never));
    await a.bridge!.asUser(alice).sendStateEvent(roomId, 'm.room.policy' as never, { via: a.serverName, public_keys: { ed25519: policyKey } } as never, '');
    await b.bridge!.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    await a.bridge!.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', 30_000);
  }, 60_000);

  it("signs B's message when B asks, with a signature that verifies with the key in the room", async () => {
    const { event_id } = await b.bridge!.asUser(bob).sendTextMessage(roomId, 'hello, policy server');
    const pdu = await pduAtA(event_id);
    const answer = await askA(pdu, b.serverName, bKey);
    expect(answer.status).toBe(200);
    const signature = answer.json[a.serverName]['ed25519:policy_server'] as string;
    expect(new VerifyKey('ed25519:policy_server', Buffer.from(policyKey, 'base64')).verify(Buffer.from(redactedSigningText(pdu as never, '10')), Buffer.from(signature, 'base64'))).toBe(true);
  }, 60_000);

  it("refuses B's forbidden attachment: 400 M_FORBIDDEN, the audit record with rule and policy version, the metric per rule", async () => {
    const { event_id } = await b.bridge!.asUser(bob).sendMessage(roomId, { msgtype: 'm.file', body: 'tool.exe', url: 'mxc://x/y', info: { mimetype: 'application/x-msdownload', size: 1000 } } as never);
    const answer = await askA(await pduAtA(event_id), b.serverName, bKey);
    expect(answer).toMatchObject({ status: 400, json: { errcode: 'M_FORBIDDEN', error: expect.stringContaining('application/x-msdownload') } });
    const [record] = await eventually(() => storeA.audit.query({ rule: 'partner-rooms/attachments' }), (r) => r.length > 0);
    expect(record).toMatchObject({ decision: 'refused', roomId, eventId: event_id, sender: bob, server: b.serverName, origin: b.serverName, policyVersion: expect.stringMatching(/^1:/) });
    expect(await metricsOfA()).toMatch(/fedgate_policy_decisions_total\{rule="partner-rooms\/attachments",outcome="refuse"[^}]*\} 1\n/);
  }, 60_000);

  it("refuses the denied server: 403 when it asks itself, 400 with the rule when B asks about its event", async () => {
    const joined = await evil.joinRoom(a.serverName, roomId);
    const mallory = evil.evil.user('mallory');
    const message = evil.evil.sign(
      {
        room_id: roomId, sender: mallory, type: 'm.room.message', content: { msgtype: 'm.text', body: 'spam' }, prev_events: [joined.join.eventId], depth: 50,
        auth_events: [joined.state.get(stateMapKey('m.room.create', ''))!, joined.state.get(stateMapKey('m.room.power_levels', ''))!, joined.join.eventId],
      },
      joined.roomVersion,
    );
    expect(await evil.request(a.serverName, 'POST', SIGN, message.pdu)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect(await askA(message.pdu, b.serverName, bKey)).toMatchObject({ status: 400, json: { errcode: 'M_FORBIDDEN', error: expect.stringContaining('not a partner') } });
    const records = await eventually(() => storeA.audit.query({ rule: 'deny-evil' }), (r) => r.length >= 2);
    expect(records.map((r) => r.origin).sort()).toEqual([b.serverName, evil.name].sort());
    expect(await metricsOfA()).toMatch(/fedgate_policy_decisions_total\{rule="deny-evil",outcome="refuse"[^}]*\} 2\n/);
  }, 60_000);

  it('refuses a body over the federation listener limit with 413 M_TOO_LARGE before parsing it', async () => {
    const answer = await askA({ room_id: roomId, sender: bob, type: 'm.room.message', content: { body: 'x'.repeat(600 * 1024) } }, b.serverName, bKey);
    expect(answer).toMatchObject({ status: 413, json: { errcode: 'M_TOO_LARGE' } });
  });

  it('takes a changed policy file without a restart, and `npx fedgate audit` exports the decisions as JSON lines', async () => {
    writeFileSync(policyFile, policy(evil.name, '    keywords: { deny: ["forbidden phrase"] }\n'));
    await eventually(() => storeA.audit.query({ decision: 'policy_reload' }), (r) => r.some((x) => x.outcome === 'ok'), 30_000);
    expect(await metricsOfA()).toMatch(/fedgate_policy_reloads_total\{outcome="applied"[^}]*\} 1\n/);
    const { event_id } = await b.bridge!.asUser(bob).sendTextMessage(roomId, 'a Forbidden Phrase here');
    expect(await askA(await pduAtA(event_id), b.serverName, bKey)).toMatchObject({ status: 400, json: { errcode: 'M_FORBIDDEN' } });

    const node = path.join(root, 'node_modules', '.bin', 'node');
    const run = spawnSync(node, [path.join(root, 'tools', 'cli', 'bin', 'fedgate.js'), 'audit', '--config', a.configPath, '--room', roomId, '--policy'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.rule)).toEqual(expect.arrayContaining(['partner-rooms', 'partner-rooms/attachments', 'deny-evil', 'partner-rooms/keywords']));
    const refusedByKeyword = lines.find((l) => l.rule === 'partner-rooms/keywords')!;
    expect(refusedByKeyword).toMatchObject({ decision: 'refused', event_id });
    expect(refusedByKeyword.policy_version).not.toBe(lines.find((l) => l.rule === 'partner-rooms')!.policy_version);

    // `npx fedgate policy test` with the deployment's config names the same rule for the same event.
    const eventFile = path.join(dir, 'event.json');
    writeFileSync(eventFile, JSON.stringify(await pduAtA(event_id)));
    const tested = spawnSync(node, [path.join(root, 'tools', 'cli', 'bin', 'fedgate.js'), 'policy', 'test', eventFile, '--config', a.configPath, '--json'], { cwd: root, encoding: 'utf8' });
    expect(tested.status).toBe(3);
    expect(JSON.parse(tested.stdout)).toMatchObject({ outcome: 'refuse', rule: 'partner-rooms/keywords', policy_version: refusedByKeyword.policy_version });
  }, 60_000);
});
