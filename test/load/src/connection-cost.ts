// What one outbound connection costs the gateway's HttpsTransport, apart from everything else a fan-out does (issue 19):
// N destinations (HTTPS servers in a child process, so their work and memory are not counted here) sent one request
// each, all at once, as a fan-out does: first contact (full handshakes), connections open, every connection closed
// (sessions resumed). Prints CPU ms and RSS / heap KiB per destination (the first round also pays loading the code:
// read it at 1,000 destinations or more); `--cpu-prof DIR` profiles the resumed round.
//   node -r ./test/support/src/swc-register.cjs test/load/src/connection-cost.ts [--destinations 1000] [--cpu-prof DIR]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HttpsTransport } from '@fedgate/federation-client';
import { createTestCa, issueServerCertificate } from '@fedgate/testing';

const SERVERS = `
const https = require('node:https');
const { cert, key, n } = JSON.parse(process.argv[1]);
const servers = [];
let listening = 0;
for (let i = 0; i < n; i++) {
  const server = https.createServer({ cert, key }, (req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')); });
  server.keepAliveTimeout = 600000;
  server.listen(0, '127.0.0.1', () => { if (++listening === n) process.send(servers.map((s) => s.address().port)); });
  servers.push(server);
}
process.on('message', (command) => {
  if (command === 'close-idle') for (const server of servers) server.closeIdleConnections();
  if (command === 'exit') process.exit(0);
  process.send('done');
});
`;

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
}

async function main(): Promise<void> {
  const destinations = Number(argument('destinations', '1000'));
  const profileDir = argument('cpu-prof', '');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const memory = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const used = process.memoryUsage();
    return { rss: used.rss / 1024, heap: used.heapUsed / 1024 };
  };
  const ca = createTestCa();
  const certificate = issueServerCertificate(ca, ['localhost']);
  const child = spawn(process.execPath, ['-e', SERVERS, JSON.stringify({ cert: certificate.certPem, key: certificate.keyPem, n: destinations })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [ports] = (await once(child, 'message')) as [number[]];
  const command = async (name: string) => {
    child.send(name);
    await once(child, 'message');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  };
  const transport = new HttpsTransport({
    dns: { lookup: async () => [{ address: '127.0.0.1', family: 4 }] },
    addressPolicy: { isAllowed: () => true } as never,
    ca: ca.certPem,
    connectTimeoutMs: 30_000,
    connectionsPerAddress: 8,
    keepAliveTimeoutMs: 600_000,
    maxPools: destinations + 10,
  });
  const request = { method: 'PUT', uri: '/_matrix/federation/v1/send/1', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"pdus":[]}'), timeoutMs: 120_000, maxResponseBytes: 1 << 20 };
  const session = new Session();
  session.connect();
  const post = (method: string, params: object = {}) => new Promise<unknown>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  const round = async (name: string, profile = false) => {
    const before = await memory();
    if (profile) {
      await post('Profiler.enable');
      await post('Profiler.start');
    }
    const cpu = process.cpuUsage();
    const started = Date.now();
    await Promise.all(ports.map((port) => transport.send([{ connectHost: 'localhost', port, hostHeader: 'localhost', tlsServerName: 'localhost' }], request)));
    const wallMs = Date.now() - started;
    const used = process.cpuUsage(cpu);
    if (profile) {
      const { profile: data } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(path.join(profileDir, `connection-cost-${name}.cpuprofile`), JSON.stringify(data));
    }
    const after = await memory();
    const per = (value: number) => (value / destinations).toFixed(2);
    console.log(
      `${name}: ${destinations} destinations in ${wallMs} ms; CPU ${per((used.user + used.system) / 1000)} ms per destination; ` +
        `RSS ${per(after.rss - before.rss)} KiB, heap ${per(after.heap - before.heap)} KiB per destination (RSS ${(after.rss / 1024).toFixed(0)} MiB)`,
    );
  };
  await round('first contact (full handshakes)');
  await round('connections open');
  await command('close-idle');
  await round('every connection closed (resumed)', profileDir !== '');
  await transport.close();
  child.send('exit');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
