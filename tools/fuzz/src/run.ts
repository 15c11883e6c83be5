// `npm run fuzz [-- --requests N --seconds S --concurrency C --seed X]`: fuzzes an embedded fedgate and
// prints the report. Exits 1 when it found a 5xx, a hang, a double response or a crash.
import { summarizeFindings } from './fuzzer';
import { fuzzEmbeddedGateway } from './fuzz-gateway';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}

async function main(): Promise<void> {
  const requests = argument('requests', 20_000);
  const maxSeconds = argument('seconds', 900);
  const concurrency = argument('concurrency', 8);
  const seed = process.argv.includes('--seed') ? argument('seed', 1) : undefined;
  /** One request in this many has a 10 MB body. */
  const bigBodyEvery = argument('big-body-every', 500);
  process.stderr.write(`fuzz: up to ${requests} requests or ${maxSeconds} s, ${concurrency} at a time\n`);
  const { report } = await fuzzEmbeddedGateway({
    requests,
    maxSeconds,
    concurrency,
    seed,
    bigBodyEvery,
    onProgress: (r) => process.stderr.write(`fuzz: ${r.sent} sent, ${Math.round(r.elapsedMs / 1000)} s, 5xx ${r.serverErrors.length}, hangs ${r.hangs.length}, RSS max ${Math.round((r.rssMaxBytes ?? 0) / 2 ** 20)} MiB\n`),
  });
  const mib = (bytes?: number) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 2 ** 20)} MiB`);
  const lines = [
    `seed ${report.seed}: ${report.sent} requests in ${(report.elapsedMs / 1000).toFixed(1)} s (${Math.round(report.sent / (report.elapsedMs / 1000))}/s)`,
    `crashed: ${report.crashed}; 5xx: ${report.serverErrors.length}; hangs: ${report.hangs.length}; double responses: ${report.doubleResponses.length}; non-Matrix error bodies: ${report.nonMatrixErrors.length}`,
    `RSS: ${mib(report.rssStartBytes)} at start, ${mib(report.rssMaxBytes)} at most; probe (GET /version) slowest ${report.probeMaxMs} ms of ${report.probeCount}; event-loop delay at most ${report.eventLoopLagMaxMs ?? 'n/a'} ms`,
    `at the end: V8 heap in use ${mib(report.heapUsedBytes)}, external memory ${mib(report.externalBytes)}`,
    `statuses: ${JSON.stringify(report.byStatus)}`,
    ...['5xx', ...summarizeFindings(report.serverErrors)].filter((_, i, all) => all.length > 1 || i > 0),
    ...['502/504 for unreachable remote servers (not failures)', ...summarizeFindings(report.upstreamFailures)].filter((_, i, all) => all.length > 1 || i > 0),
    ...['hangs', ...summarizeFindings(report.hangs)].filter((_, i, all) => all.length > 1 || i > 0),
    ...['double responses', ...summarizeFindings(report.doubleResponses)].filter((_, i, all) => all.length > 1 || i > 0),
    ...['non-Matrix error bodies', ...summarizeFindings(report.nonMatrixErrors)].filter((_, i, all) => all.length > 1 || i > 0),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const clean = !report.crashed && report.serverErrors.length === 0 && report.hangs.length === 0 && report.doubleResponses.length === 0 && report.nonMatrixErrors.length === 0;
  process.exit(clean ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(2);
});
