import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type AuditEntry } from '@fedgate/store';
import { auditQueryOf, exportAudit, parseAuditTime, policyTest, withAuditStore } from './policy';

const capture = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
};

describe('fedgate policy test', () => {
  let dir: string;
  let policy: string;
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-cli-policy-'));
    policy = write('policy.yaml', 'version: 5\nservers:\n  - id: deny-spam\n    action: deny\n    servers: ["*.spam.example"]\nrooms:\n  - id: shared\n    rooms: ["!shared:*"]\n    attachments: { mimetypes: ["image/*"] }\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const image = (mimetype: string) => ({ room_id: '!shared:fg.example', sender: '@a:fg.example', type: 'm.room.message', content: { msgtype: 'm.image', body: 'x', info: { mimetype } } });

  it('prints the rule that would refuse a forbidden attachment, exit 3', async () => {
    const c = capture();
    expect(await policyTest(write('exe.json', image('application/x-msdownload')), { policy }, c.io)).toBe(3);
    expect(c.out.join('')).toMatch(/^refuse\tshared\/attachments\t5:[0-9a-f]{16}\tattachments of type application\/x-msdownload/);
  });

  it('prints the rule that would sign, exit 0, as JSON with --json', async () => {
    const c = capture();
    expect(await policyTest(write('png.json', image('image/png')), { policy, json: true }, c.io)).toBe(0);
    expect(JSON.parse(c.out.join(''))).toMatchObject({ outcome: 'sign', rule: 'shared' });
  });

  it('names the server rule that denies the asking server', async () => {
    const c = capture();
    expect(await policyTest(write('png2.json', image('image/png')), { policy, origin: 'x.spam.example' }, c.io)).toBe(3);
    expect(c.out.join('')).toContain('deny-spam');
  });

  it('exits 1 with the problems of an invalid policy or an unreadable event', async () => {
    const bad = capture();
    expect(await policyTest(write('e.json', image('image/png')), { policy: write('bad.yaml', 'version: 1\nrules: []\n') }, bad.io)).toBe(1);
    expect(bad.err.join('')).toContain('unknown key rules');
    const missing = capture();
    expect(await policyTest(path.join(dir, 'missing.json'), { policy }, missing.io)).toBe(1);
    expect(missing.err.join('')).toContain('cannot read the event');
  });
});

describe('fedgate audit', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-cli-audit-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports policy decisions as JSON lines, filtered by room, server, rule, decision and time', async () => {
    const configFile = path.join(dir, 'fedgate.yaml');
    writeFileSync(configFile, `serverName: fg.test\ndataDir: ${JSON.stringify(path.join(dir, 'data'))}\n`);
    mkdirSync(path.join(dir, 'data'));
    const missing = capture();
    expect(await withAuditStore({ config: configFile }, async () => 0, missing.io)).toBe(1);
    expect(missing.err.join('')).toContain('no store at');
    const store = openSqliteStore(path.join(dir, 'data', 'fedgate.sqlite'));
    const base: AuditEntry = { direction: 'in', origin: 'asker.test', destination: 'fg.test', method: 'POST', path: '/_matrix/policy/v1/sign', ts: 1_000, durationMs: 1, status: 200, outcome: 'ok' };
    await store.audit.append({ ...base, decision: 'signed', roomId: '!a:fg.test', eventId: '$1', sender: '@u:ok.test', server: 'ok.test', rule: 'shared', policyVersion: '5:x' });
    await store.audit.append({ ...base, ts: 2_000, status: 400, outcome: 'rejected', decision: 'refused', roomId: '!a:fg.test', eventId: '$2', sender: '@u:bad.test', server: 'bad.test', rule: 'deny-bad', policyVersion: '5:x' });
    await store.audit.append({ ...base, ts: 3_000, path: '/_matrix/federation/v1/send/1', method: 'PUT' });
    await store.close();

    const run = async (opts: Record<string, string | boolean>) => {
      const c = capture();
      const code = await withAuditStore({ config: configFile, ...opts }, (s) => exportAudit(s, { ...opts }, c.io), c.io);
      return { code, lines: c.out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
    };
    expect((await run({ room: '!a:fg.test' })).lines.map((l) => l.event_id)).toEqual(['$2', '$1']);
    expect((await run({ server: 'bad.test' })).lines).toEqual([expect.objectContaining({ rule: 'deny-bad', decision: 'refused', policy_version: '5:x', room_id: '!a:fg.test', time: '1970-01-01T00:00:02.000Z' })]);
    expect((await run({ rule: 'shared' })).lines.map((l) => l.event_id)).toEqual(['$1']);
    expect((await run({ decision: 'refused' })).lines.map((l) => l.event_id)).toEqual(['$2']);
    expect((await run({ policy: true })).lines).toHaveLength(2);
    expect((await run({ since: '1500', until: '1970-01-01T00:00:02.500Z' })).lines.map((l) => l.event_id)).toEqual(['$2']);
    expect((await run({})).lines).toHaveLength(3);
  });

  it('refuses bad filters with a usage error', async () => {
    const c = capture();
    expect(await exportAudit({ audit: { query: async () => [] } as never }, { decision: 'maybe' }, c.io)).toBe(2);
    expect(c.err.join('')).toContain('--decision must be one of');
    expect(() => auditQueryOf({ limit: '0' })).toThrow('--limit');
    expect(parseAuditTime('15m', 1_000_000)).toBe(100_000);
    expect(() => parseAuditTime('yesterday')).toThrow('not a time');
  });
});
