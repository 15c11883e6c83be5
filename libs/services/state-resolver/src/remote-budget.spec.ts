// Issue 11 defect 2, against the real HTTPS transport: a server that accepts the connection and never
// answers (a tarpit) costs a parked PDU no more than what is left of its budget, and nothing once it is spent.
import { createServer, type Server, type Socket } from 'node:net';
import { FederationClientError, FederationHttpClient } from '@fedgate/federation-client';
import { budgetedFederation, RemoteBudgetSpent, remoteIoRefused, RemoteIoNeeded, withRemoteBudget } from './remote-budget';

describe('remote calls of inbound PDUs', () => {
  let tarpit: Server;
  let port: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Accepts every connection and never says a word (not even the TLS handshake).
    tarpit = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
    port = (tarpit.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => tarpit.close(resolve));
  });

  const client = () => new FederationHttpClient({ addressPolicy: { allow: ['127.0.0.0/8'] }, requestTimeoutMs: 60_000, connectTimeoutMs: 60_000 });

  it('defect 2: a call to a tarpit ends with what is left of the budget (not the 60 s request timeout), and none is made once it is spent', async () => {
    const calls = budgetedFederation(client(), 60_000);
    const destination = `127.0.0.1:${port}`;
    const failure = await withRemoteBudget(Date.now() + 400, () => calls.getJson(destination, '/_matrix/federation/v1/event/%24x')).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(FederationClientError);
    expect(failure).toMatchObject({ code: 'TIMEOUT' });
    expect(sockets).toHaveLength(1);

    const spent = await withRemoteBudget(Date.now() - 1, () => calls.getJson(destination, '/_matrix/federation/v1/event/%24y')).catch((e: unknown) => e);
    expect(spent).toBeInstanceOf(RemoteBudgetSpent);
    expect(spent).toMatchObject({ code: 'TIMEOUT' });
    expect(sockets).toHaveLength(1);
  });

  it('refuses every call on the partition path before anything leaves the process', async () => {
    await expect(remoteIoRefused().postJson(`127.0.0.1:${port}`, '/_matrix/federation/v1/get_missing_events/!r', {})).rejects.toBeInstanceOf(RemoteIoNeeded);
    expect(sockets).toHaveLength(1);
  });
});
