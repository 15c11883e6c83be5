// `npm run loadtest`: starts the targets one after the other, joins each from a simulated remote homeserver over
// federation HTTPS on loopback, runs the workloads, prints the side-by-side table and writes it (with the raw
// figures as JSON) to test-results/loadtest.{md,json}; `--write-docs` also puts it into docs/benchmarks.md.
//   --targets fedgate-embedded,synapse   (also fedgate-distributed and fedgate-distributed-2sr, two state-resolvers:
//                                         NATS and a MongoDB-wire server from FEDGATE_TEST_NATS_URL / _MONGO_URL,
//                                         else started here as the e2e suite starts them)
//   --scale short|medium|full
//   --parts inbound,fan-out,big-join   (or interleaved: only the rooms interleaved, to compare state-resolver replicas;
//                                       idle: only the idle CPU of the targets' processes)
//   --cpu-prof DIR   the fedgate processes write V8 CPU profiles into DIR when they stop
//   --trace          the fedgate processes export their spans here; each big join prints its /join timeline
//   --heap-snapshot DIR   the fedgate processes write a V8 heap snapshot into DIR once the fan-out's servers joined
//   --fan-out-servers N   simulated servers joined for the fan-out (default: the scale's)
//   --join-concurrency N  joins in flight while those servers join (default 8; the last join is always alone)
//   --fan-out-build relay|joins   how those servers get into the room: their joins relayed in one server's transactions
//                         (default; seconds at 1,000) or each through make_join/send_join on the target (~N²/2 deliveries)
//   --fan-out-threads N   worker threads the fan-out's simulated servers answer from (default 0: all on the
//                         generator's main thread; on 2 shared cores the workers did not make the target's figures
//                         better or steadier: see benchmarks.md; relayed build only)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { logger as matrixSdkLogger } from 'matrix-js-sdk/lib/logger';
import { createTestCa, startMongo, startNats, stopMongo, stopNats } from '@fedgate/testing';
import { machineDescription, markdownReport, type LoadReport } from './report';
import { runLoad, type Part } from './run-load';
import { SpanCollector } from './span-collector';
import { scales } from './workloads';
import type { TargetKind } from './targets';

const root = path.resolve(__dirname, '..', '..', '..');
const BEGIN = '<!-- loadtest:begin -->';
const END = '<!-- loadtest:end -->';

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
}

async function main(): Promise<void> {
  // The bridge's client library logs every request at debug level, which would drown the report.
  (matrixSdkLogger as unknown as { setLevel(level: string): void }).setLevel('warn');
  const scaleName = argument('scale', 'full') as keyof typeof scales;
  if (!scales[scaleName]) throw new Error(`--scale must be one of ${Object.keys(scales).join(', ')}`);
  const profileDir = argument('cpu-prof', '');
  if (profileDir) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${path.resolve(profileDir)}`.trim();
  const heapDir = argument('heap-snapshot', '');
  if (heapDir) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${path.resolve(heapDir)}`.trim();
  const kinds = argument('targets', 'fedgate-embedded,synapse').split(',') as TargetKind[];
  const parts = argument('parts', 'inbound,fan-out,big-join').split(',') as Part[];
  const fanOutServers = Number(argument('fan-out-servers', String(scales[scaleName].fanOutServers)));
  if (!Number.isInteger(fanOutServers) || fanOutServers < 1) throw new Error('--fan-out-servers must be a positive integer');
  const joinConcurrency = Number(argument('join-concurrency', String(scales[scaleName].joinConcurrency)));
  if (!Number.isInteger(joinConcurrency) || joinConcurrency < 1) throw new Error('--join-concurrency must be a positive integer');
  const fanOutBuild = argument('fan-out-build', 'relay') as 'relay' | 'joins';
  if (fanOutBuild !== 'relay' && fanOutBuild !== 'joins') throw new Error('--fan-out-build must be relay or joins');
  const fanOutThreads = Number(argument('fan-out-threads', '0'));
  if (!Number.isInteger(fanOutThreads) || fanOutThreads < 0) throw new Error('--fan-out-threads must be a non-negative integer');
  const scale = { ...scales[scaleName], fanOutServers, joinConcurrency, fanOutBuild, fanOutThreads, ...(heapDir ? { heapSnapshotDir: path.resolve(heapDir) } : {}) };
  const report: LoadReport = { date: new Date().toISOString(), machine: machineDescription(), scale: scaleName, targets: [] };
  const ca = createTestCa();
  const distributed = kinds.some((kind) => kind.startsWith('fedgate-distributed'));
  if (distributed) {
    const [nats, mongo] = await Promise.all([startNats(), startMongo()]);
    process.env.FEDGATE_TEST_NATS_URL = nats.url;
    process.env.FEDGATE_TEST_MONGO_URL = mongo.url;
  }
  const collector = process.argv.includes('--trace') ? await SpanCollector.start() : undefined;
  try {
    for (const kind of kinds) {
      console.error(`loadtest: ${kind}…`);
      report.targets.push(await runLoad(kind, ca, scale, (line) => console.error(`  ${line}`), parts, { collector }));
    }
  } finally {
    await collector?.stop();
    if (distributed) await Promise.all([stopNats(), stopMongo()]);
  }
  const markdown = markdownReport(report);
  const out = path.join(root, 'test-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'loadtest.json'), JSON.stringify(report, null, 2));
  writeFileSync(path.join(out, 'loadtest.md'), markdown + '\n');
  console.log(markdown);
  if (process.argv.includes('--write-docs')) {
    const docs = path.join(root, 'docs', 'benchmarks.md');
    const text = readFileSync(docs, 'utf8');
    const block = `${BEGIN}\n${markdown}\n${END}`;
    writeFileSync(docs, text.includes(BEGIN) ? text.replace(new RegExp(`${BEGIN}[\\s\\S]*${END}`), block) : `${text.trimEnd()}\n\n${block}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
