// Issue 11 defect 2, end to end: a server that sends a PDU with an unknown prev event and then accepts our
// gap-filling requests without ever answering (a tarpit) must not stop the other rooms of that PDU's room
// partition. fedgate A runs with one room partition, so every room shares it; a real fedgate B talks in a
// second room while the tarpit holds A's request open; the tarpit's PDU is given up after its budget.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { busOptionsFor, EmbeddedBus, JetStreamBus, type DeadLetterAdmin } from '@fedgate/bus';
import { loadConfig } from '@fedgate/config';
import { topologyFor } from '@fedgate/platform';
import { buildServerKeyDocument, buildXMatrixHeader, computeEventId, generateSigningKey, signEvent } from '@fedgate/protocol';
import { createTestCa, keepLogsAndDestroy, issueServerCertificate, startFedgatePair, type FedgateInstance, type FedgateShape, type TestBridge, type TestCertificateAuthority } from '@fedgate/testing';

const EVENT_WAIT_MS = 30_000;
const BUDGET_MS = 10_000;

/** Publishes its signing key; every other request is read and never answered. */
class Tarpit {
  readonly key = generateSigningKey();
  readonly held: string[] = [];
  serverName = '';
  private readonly server: Server;
  private readonly dispatcher: Agent;

  constructor(ca: TestCertificateAuthority) {
    const certificate = issueServerCertificate(ca);
    this.dispatcher = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
    this.server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (req, res) => {
      if (req.method === 'GET' && req.url === '/_matrix/key/v2/server') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(buildServerKeyDocument({ serverName: this.serverName, keys: [this.key], validUntilTs: Date.now() + 3_600_000 })));
        return;
      }
      this.held.push(`${req.method} ${req.url}`);
      req.resume();
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '::', () => resolve()));
    this.serverName = `localhost:${(this.server.address() as AddressInfo).port}`;
  }

  async send(destination: string, txnId: string, pdus: unknown[]): Promise<number> {
    const uri = `/_matrix/federation/v1/send/${txnId}`;
    const body = { origin: this.serverName, origin_server_ts: Date.now(), pdus };
    const authorization = buildXMatrixHeader({ method: 'PUT', uri, origin: this.serverName, destination, content: body }, this.key);
    const res = await request(`https://${destination}${uri}`, {
      method: 'PUT',
      body: JSON.stringify(body),
      headers: { authorization, 'content-type': 'application/json' },
      dispatcher: this.dispatcher,
    });
    await res.body.text();
    return res.statusCode;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.dispatcher.close();
  }
}

function bridgeOf(instance: FedgateInstance): TestBridge {
  if (!instance.bridge) throw new Error(`${instance.name} has no bridge`);
  return instance.bridge;
}

describe.each(['embedded', 'distributed'] as FedgateShape[])('a tarpitting origin and the room partition (%s)', (shape) => {
  let ca: TestCertificateAuthority;
  let a: FedgateInstance;
  let b: FedgateInstance;
  let tarpit: Tarpit;

  beforeAll(async () => {
    ca = createTestCa();
    tarpit = new Tarpit(ca);
    await tarpit.start();
    [a, b] = await startFedgatePair({ shape, ca, name: 'a', config: { partitions: { rooms: 1, parkedBudgetMs: BUDGET_MS } } }, { shape, ca, name: 'b' });
  }, 240_000);

  afterAll(async () => {
    await keepLogsAndDestroy(`partition-tarpit-${shape}`, [a, b]);
    await tarpit?.stop();
  }, 60_000);

  it('defect 2: another room flows while the tarpit holds gap filling; the tarpit\'s PDU is given up after its budget with the reason', async () => {
    const bridgeA = bridgeOf(a);
    const bridgeB = bridgeOf(b);
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice`);
    const bob = await bridgeB.registerVirtualUser(`${b.name}chat_bob`);
    const { room_id: held } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'held by a tarpit' });
    const { room_id: flowing } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'still flowing' });

    // The tarpit's PDU in the first room names a prev event nobody has: A must ask the tarpit to fill the gap.
    const roomVersion = ((await bridgeA.asUser(alice).getStateEvent(held, 'm.room.create', '')) as { room_version?: string }).room_version ?? '1';
    const create = bridgeA.received.events((e) => e.room_id === held && e.type === 'm.room.create')[0]!;
    const pdu = signEvent(
      {
        room_id: held,
        sender: `@mallory:${tarpit.serverName}`,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: 'built on nothing you have' },
        origin_server_ts: Date.now(),
        depth: 100,
        prev_events: [`$${randomBytes(32).toString('base64url')}`],
        auth_events: roomVersion === '12' ? [] : [create.event_id],
      },
      roomVersion,
      tarpit.serverName,
      tarpit.key,
    );
    const eventId = computeEventId(pdu, roomVersion);
    expect(await tarpit.send(a.serverName, 'gapped', [pdu])).toBe(200);
    for (let waited = 0; tarpit.held.length === 0 && waited < EVENT_WAIT_MS; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tarpit.held.some((r) => r.includes('/get_missing_events/'))).toBe(true);

    // Meanwhile B's user joins the second room and talks: A's bridge gets it through the same partition.
    await bridgeB.asUser(bob).joinRoom(flowing, { viaServers: [a.serverName] });
    const said = await bridgeB.asUser(bob).sendTextMessage(flowing, 'the partition still flows');
    const atA = await bridgeA.waitForEvent((e) => e.event_id === said.event_id, EVENT_WAIT_MS);
    expect(atA).toMatchObject({ room_id: flowing, sender: bob });

    // The tarpit never answers: its PDU is given up after the budget, with the reason, for the operator.
    const config = loadConfig({ argv: ['--config', a.configPath], env: {} });
    const options = busOptionsFor(topologyFor(config));
    const bus: DeadLetterAdmin & { close(): Promise<void> } =
      config.mode === 'embedded' ? new EmbeddedBus({ ...options, path: config.sqlite.path }) : await JetStreamBus.connect({ servers: config.nats.url }, { ...options, pruneIntervalMs: 0 });
    try {
      let letter;
      for (let waited = 0; !letter && waited < BUDGET_MS + EVENT_WAIT_MS; waited += 250) {
        letter = (await bus.listDeadLetters()).find((d) => d.letter.messageId === `parked:${eventId}:${tarpit.serverName}:gapped`);
        if (!letter) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(letter?.letter.reason).toMatch(new RegExp(`gave up on parked \\${eventId} .* from ${tarpit.serverName}.*budget ${BUDGET_MS} ms`));
    } finally {
      await bus.close();
    }
    // And the room is not stuck for its own users.
    const after = await bridgeA.asUser(alice).sendTextMessage(held, 'still here');
    expect(after.event_id).toMatch(/^\$/);
  }, 180_000);
});
