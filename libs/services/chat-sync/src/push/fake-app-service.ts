// A loopback HTTP server standing in for an application service in the pusher's unit tests.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  body: any;
}

export type FakeResponse = 'ok' | 'error' | 'drop' | { status: number; body?: unknown };

export class FakeAppService {
  readonly requests: RecordedRequest[] = [];
  /** Decides each request's fate; defaults to 200 {}. */
  respond: (request: RecordedRequest) => FakeResponse = () => 'ok';
  /** Delay before answering, to observe concurrency. */
  delayMs = 0;
  /** When set, answers wait for it (a request held in flight for as long as a test needs). */
  hold: Promise<void> | undefined;
  inFlight = 0;
  maxInFlight = 0;
  private server!: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req).then((outcome) => {
        if (outcome === 'drop') {
          req.socket.destroy();
          return;
        }
        const { status, body } = outcome === 'ok' ? { status: 200, body: {} } : outcome === 'error' ? { status: 500, body: { errcode: 'M_UNKNOWN', error: 'boom' } } : outcome;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Transactions the AS accepted, first delivery of each txnId only (as an AS deduplicates). */
  acceptedTransactions(): RecordedRequest[] {
    const seen = new Set<string>();
    return this.requests.filter((r) => {
      if (r.method !== 'PUT' || (r as RecordedRequest & { accepted?: boolean }).accepted !== true || seen.has(r.url)) return false;
      seen.add(r.url);
      return true;
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage): Promise<FakeResponse> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const request: RecordedRequest & { accepted?: boolean } = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      body: text ? JSON.parse(text) : undefined,
    };
    this.requests.push(request);
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.hold) await this.hold;
    this.inFlight--;
    const outcome = this.respond(request);
    request.accepted = outcome === 'ok' || (typeof outcome === 'object' && outcome.status < 300);
    return outcome;
  }
}
