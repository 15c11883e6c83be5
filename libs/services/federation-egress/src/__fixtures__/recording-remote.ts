// A loopback HTTPS "remote server" for egress tests: records every /send transaction and answers as told.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueServerCertificate, type TestCertificateAuthority } from '@fedgate/testing';

export interface ReceivedTransaction {
  txnId: string;
  body: { origin: string; origin_server_ts: number; pdus: Array<{ event_id?: string }>; edus: Array<{ edu_type: string; content: Record<string, unknown> }> };
  raw: string;
  authorization: string | undefined;
  answeredStatus: number;
}

export type Answer = { status: number; body: unknown };

export class RecordingRemote {
  readonly received: ReceivedTransaction[] = [];
  /** Decides the answer to each transaction; default 200 `{pdus: {}}`. */
  answer: (txn: Omit<ReceivedTransaction, 'answeredStatus'>) => Answer = () => ({ status: 200, body: { pdus: {} } });
  private server: Server | undefined;
  port = 0;

  constructor(private readonly ca: TestCertificateAuthority) {}

  get serverName(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Every PDU event ID received, across all transactions answered 200, in arrival order. */
  deliveredEventIds(): string[] {
    return this.received.filter((t) => t.answeredStatus === 200).flatMap((t) => t.body.pdus.map((p) => String(p.event_id)));
  }

  async start(): Promise<void> {
    const pem = issueServerCertificate(this.ca);
    const server = createServer({ cert: pem.certPem, key: pem.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const match = /^\/_matrix\/federation\/v1\/send\/([^/?]+)$/.exec(req.url ?? '');
        if (req.method !== 'PUT' || !match) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'not here' }));
          return;
        }
        const txn = { txnId: decodeURIComponent(match[1]), body: JSON.parse(raw) as ReceivedTransaction['body'], raw, authorization: req.headers.authorization };
        const answer = this.answer(txn);
        this.received.push({ ...txn, answeredStatus: answer.status });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      });
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Down: connections are refused until `start()` again (same port). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
