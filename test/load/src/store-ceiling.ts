// What the MongoDB-wire server of the distributed runs can do by itself (issue 19: is it what bounds 2 state-resolvers
// vs 1?): single-document writes and `_id` reads a second from 1, 2, 4 and 8 concurrent clients (each its own
// connection, as each fedgate process has its own), and the server's CPU milliseconds per operation.
//   node -r ./test/support/src/swc-register.cjs test/load/src/store-ceiling.ts [seconds per step, default 5] [documents, default 2000]
// Uses FEDGATE_TEST_MONGO_URL, else starts FerretDB as the e2e suite does; prints one line per step.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { startMongo, stopMongo } from '@fedgate/testing';
import { childProcessesMatching, sampleProcesses } from './process-meter';

const seconds = Number(process.argv[2] ?? 5);
/** Documents in the collection read from (a read by `_id` should not depend on it). */
const documents = Number(process.argv[3] ?? 2_000);
const document = (n: number) => ({ _id: `$ceiling-${n}-${randomBytes(8).toString('hex')}`, roomId: '!ceiling:load.test', depth: n, pdu: 'x'.repeat(900) });

async function step(clients: MongoClient[], db: string, kind: 'write' | 'read', ids: string[]): Promise<{ opsPerSecond: number; serverCpuMsPerOp: number }> {
  const server = childProcessesMatching(['ferretdb', 'mongod']);
  const cpuBefore = sampleProcesses(server).cpuSeconds;
  const until = Date.now() + seconds * 1000;
  let ops = 0;
  const started = Date.now();
  await Promise.all(
    clients.map(async (client, c) => {
      const events = client.db(db).collection<{ _id: string }>('events');
      for (let i = 0; Date.now() < until; i++) {
        if (kind === 'write') await events.insertOne(document(c * 1_000_000 + i));
        else await events.findOne({ _id: ids[(c * 7919 + i) % ids.length]! });
        ops++;
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  const serverCpuMs = (sampleProcesses(server).cpuSeconds - cpuBefore) * 1000;
  return { opsPerSecond: ops / elapsed, serverCpuMsPerOp: server.length > 0 ? serverCpuMs / ops : Number.NaN };
}

const clientCounts = (process.argv[4] ?? '1,2,4,8').split(',').map(Number);

async function main(): Promise<void> {
  const { url } = await startMongo();
  const db = `fedgate_ceiling_${randomBytes(4).toString('hex')}`;
  const clients = await Promise.all(Array.from({ length: 8 }, () => MongoClient.connect(url, { maxPoolSize: 1 })));
  try {
    const seed = Array.from({ length: documents }, (_, n) => document(n));
    await clients[0]!.db(db).collection<{ _id: string }>('events').insertMany(seed);
    const ids = seed.map((d) => d._id);
    console.log(`MongoDB-wire server at ${url.replace(/\/\/[^@]*@/, '//')}, ${documents} documents, ${seconds} s per step, load average ${(await import('node:os')).loadavg()[0]!.toFixed(2)}`);
    for (const kind of ['write', 'read'] as const) {
      for (const n of clientCounts) {
        const result = await step(clients.slice(0, n), db, kind, ids);
        console.log(`${kind}s, ${n} client${n > 1 ? 's' : ''}: ${result.opsPerSecond.toFixed(0)}/s, server CPU ${result.serverCpuMsPerOp.toFixed(2)} ms per op`);
      }
    }
  } finally {
    await clients[0]!.db(db).dropDatabase().catch(() => undefined);
    await Promise.all(clients.map((c) => c.close()));
    await stopMongo();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
