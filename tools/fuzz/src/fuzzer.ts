// Sends hostile requests at a running fedgate, bounded in number and time, and reports what a hostile
// edge must never show: 5xx answers, requests left hanging, a crashed process, memory and event-loop stalls.
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { nextRequest, type FuzzRequest, type FuzzTarget } from './cases';
import { Random } from './random';

export interface FuzzOptions extends FuzzTarget {
  federationUrl: string;
  clientServerUrl: string;
  /** PEM of the CA the federation listener's certificate comes from. */
  caPem: string;
  /** The gateway's process ID, for RSS and crash checks (absent: neither is measured). */
  pid?: number;
  requests: number;
  /** Stops after this long even when requests remain. */
  maxSeconds: number;
  concurrency?: number;
  seed?: number;
  /** A request unanswered after this long is a hang. */
  hangAfterMs?: number;
  /** One request in this many has a 10 MB body (default 500). */
  bigBodyEvery?: number;
  onProgress?: (report: FuzzReport) => void;
}

export interface FuzzFinding {
  route: string;
  method: string;
  path: string;
  status?: number;
  bodyKind?: string;
  detail: string;
}

export interface FuzzReport {
  seed: number;
  sent: number;
  elapsedMs: number;
  byStatus: Record<string, number>;
  serverErrors: FuzzFinding[];
  /**
   * 502/504 with a Matrix error body: a remote server the request named could not be reached (the fuzzer names
   * unresolvable servers on purpose). Reported, not counted as failures of this server.
   */
  upstreamFailures: FuzzFinding[];
  /** Error statuses whose body is not a Matrix error (`errcode`, `error`). */
  nonMatrixErrors: FuzzFinding[];
  hangs: FuzzFinding[];
  /** Raw-socket cases answered with more than one response. */
  doubleResponses: FuzzFinding[];
  crashed: boolean;
  rssStartBytes?: number;
  rssMaxBytes?: number;
  /** Longest time the listener took to answer a trivial probe (GET /version) during the run. */
  probeMaxMs: number;
  /** The gateway's own longest event-loop delay (`nodejs_eventloop_lag_max_seconds`, scraped every second). */
  eventLoopLagMaxMs?: number;
  /** The gateway's V8 heap in use and memory outside it (buffers, native), as last scraped: where RSS goes. */
  heapUsedBytes?: number;
  externalBytes?: number;
  probeCount: number;
}

const MAX_FINDINGS_KEPT = 200;

function rssOf(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const random = new Random(seed);
  const hangAfterMs = options.hangAfterMs ?? 30_000;
  const bigEvery = options.bigBodyEvery ?? 500;
  const started = Date.now();
  const deadline = started + options.maxSeconds * 1000;
  const federation = new URL(options.federationUrl);
  const client = new URL(options.clientServerUrl);
  const agent = new Agent({ connect: { ca: options.caPem, rejectUnauthorized: true }, headersTimeout: hangAfterMs, bodyTimeout: hangAfterMs, connections: 16 });
  const report: FuzzReport = { seed, sent: 0, elapsedMs: 0, byStatus: {}, serverErrors: [], upstreamFailures: [], nonMatrixErrors: [], hangs: [], doubleResponses: [], crashed: false, probeMaxMs: 0, probeCount: 0 };
  if (options.pid !== undefined) report.rssStartBytes = report.rssMaxBytes = rssOf(options.pid);
  const count = (key: string) => (report.byStatus[key] = (report.byStatus[key] ?? 0) + 1);
  const keep = (list: FuzzFinding[], finding: FuzzFinding) => list.length < MAX_FINDINGS_KEPT && list.push(finding);
  let stop = false;

  const sampler = setInterval(() => {
    if (options.pid === undefined) return;
    if (!alive(options.pid)) {
      report.crashed = true;
      stop = true;
      return;
    }
    const rss = rssOf(options.pid);
    if (rss !== undefined && rss > (report.rssMaxBytes ?? 0)) report.rssMaxBytes = rss;
  }, 250);

  const scrapeLag = async () => {
    try {
      const res = await request(`${client.origin}/metrics`, { dispatcher: agent, headersTimeout: hangAfterMs });
      const text = await res.body.text();
      const metric = (name: string) => {
        const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)$`, 'm').exec(text);
        return match ? Number(match[1]) : undefined;
      };
      const lag = metric('nodejs_eventloop_lag_max_seconds');
      if (lag !== undefined) report.eventLoopLagMaxMs = Math.max(report.eventLoopLagMaxMs ?? 0, Math.round(lag * 1000));
      report.heapUsedBytes = metric('nodejs_heap_size_used_bytes') ?? report.heapUsedBytes;
      report.externalBytes = metric('nodejs_external_memory_bytes') ?? report.externalBytes;
    } catch {
      // No metrics: the probe's figure still stands.
    }
  };
  const probe = (async () => {
    let probes = 0;
    while (!stop) {
      if (probes++ % 4 === 0) await scrapeLag();
      const at = Date.now();
      try {
        const res = await request(`${federation.origin}/_matrix/federation/v1/version`, { dispatcher: agent, headersTimeout: hangAfterMs });
        await res.body.dump();
        report.probeMaxMs = Math.max(report.probeMaxMs, Date.now() - at);
        report.probeCount++;
      } catch (err) {
        keep(report.hangs, { route: 'probe', method: 'GET', path: '/_matrix/federation/v1/version', detail: String(err) });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();

  const sendOne = async (fuzz: FuzzRequest) => {
    const base = fuzz.listener === 'federation' ? federation.origin : client.origin;
    const finding = (status: number | undefined, detail: string): FuzzFinding => ({ route: fuzz.route, method: fuzz.method, path: fuzz.path.slice(0, 300), status, bodyKind: fuzz.bodyKind, detail: detail.slice(0, 500) });
    try {
      const res = await request(base + fuzz.path, { method: fuzz.method as 'GET', headers: fuzz.headers, body: fuzz.body, dispatcher: agent });
      const text = await res.body.text();
      count(String(res.statusCode));
      if ((res.statusCode === 502 || res.statusCode === 504) && namesUnreachableServer(text)) keep(report.upstreamFailures, finding(res.statusCode, text));
      else if (res.statusCode >= 500) keep(report.serverErrors, finding(res.statusCode, text));
      if (res.statusCode >= 400 && fuzz.method !== 'HEAD' && !isMatrixError(text)) keep(report.nonMatrixErrors, finding(res.statusCode, text));
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
        count('hang');
        keep(report.hangs, finding(undefined, code));
      } else if (options.pid !== undefined && !alive(options.pid)) {
        report.crashed = true;
        stop = true;
      } else {
        // The server may cut a hostile request short (a 413 before the body is read, a closed socket): fine.
        count(`client:${code || (err as Error).name}`);
      }
    }
  };

  const worker = async () => {
    while (!stop && report.sent < options.requests && Date.now() < deadline) {
      const n = ++report.sent;
      if (random.chance(0.03)) await rawCase(random, federation, client, options.caPem, hangAfterMs, report, count, keep);
      else await sendOne(nextRequest(random, options, n % bigEvery === 0));
      if (n % 1000 === 0) options.onProgress?.({ ...report, elapsedMs: Date.now() - started });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  stop = true;
  clearInterval(sampler);
  await probe;
  await scrapeLag();
  await agent.close();
  if (options.pid !== undefined) {
    if (!alive(options.pid)) report.crashed = true;
    const rss = rssOf(options.pid);
    if (rss !== undefined && rss > (report.rssMaxBytes ?? 0)) report.rssMaxBytes = rss;
  }
  report.elapsedMs = Date.now() - started;
  return report;
}

/** The fuzzer's remote servers do not exist: `.invalid` names and closed loopback ports. */
const UNREACHABLE_SERVER = /[\w-]+\.invalid\b|localhost:\d+|127\.0\.0\.1:\d+|\[::1\]:\d+/;

/** A gateway error naming one of them: the remote is down, not this server. */
function namesUnreachableServer(text: string): boolean {
  if (!isMatrixError(text)) return false;
  return UNREACHABLE_SERVER.test((JSON.parse(text) as { error: string }).error);
}

function isMatrixError(text: string): boolean {
  try {
    const body = JSON.parse(text) as { errcode?: unknown; error?: unknown };
    return typeof body.errcode === 'string' && body.errcode.startsWith('M_') && typeof body.error === 'string';
  } catch {
    return false;
  }
}

/** HTTP the client libraries will not send: broken framing, huge or odd headers, requests cut short. */
async function rawCase(
  random: Random,
  federation: URL,
  client: URL,
  caPem: string,
  hangAfterMs: number,
  report: FuzzReport,
  count: (key: string) => void,
  keep: (list: FuzzFinding[], finding: FuzzFinding) => void,
): Promise<void> {
  const onFederation = random.chance(0.5);
  const target = onFederation ? federation : client;
  const path = random.pick(['/_matrix/federation/v1/send/t1', '/_matrix/key/v2/query', '/_matrix/client/v3/createRoom', `/_matrix/federation/v1/event/${'a'.repeat(2000)}`, '/_matrix/federation/v1/version']);
  const [kind, text, closeAfterMs] = random.pick<[string, string, number | undefined]>([
    ['content-length-mismatch', `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{"a":1}`, undefined],
    ['double-content-length', `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`, undefined],
    ['bad-chunked', `PUT ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`, undefined],
    ['header-overflow', `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\nConnection: close\r\n\r\n`, undefined],
    ['many-headers', `GET ${path} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\nConnection: close\r\n\r\n`, undefined],
    ['bad-request-line', `GET\u0000 ${path} HTTP/9.9\r\n\r\n`, undefined],
    ['long-param-close', `GET /_matrix/federation/v1/event/${'b'.repeat(1500)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, undefined],
    ['unfinished-headers', `GET ${path} HTTP/1.1\r\nHost: x\r\n`, 200],
    ['unfinished-body', `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":`, 200],
  ]);
  const response = await new Promise<string | 'hang'>((resolve) => {
    const port = Number(target.port);
    const socket: Socket = onFederation ? tlsConnect({ host: target.hostname, port, ca: caPem, servername: 'localhost' }) : tcpConnect(port, target.hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(closeAfterMs === undefined ? 'hang' : received);
    }, closeAfterMs ?? hangAfterMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(text);
  });
  const finding = (detail: string, status?: number): FuzzFinding => ({ route: `raw:${kind}`, method: 'RAW', path: path.slice(0, 100), status, detail: detail.slice(0, 300) });
  if (response === 'hang') {
    count('hang');
    keep(report.hangs, finding('no answer and no close'));
    return;
  }
  const statuses = [...response.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  count(statuses.length ? `raw:${statuses[0]}` : 'raw:closed');
  if (statuses.length > 1) keep(report.doubleResponses, finding(response.slice(0, 300), statuses[1]));
  if (statuses.some((s) => s >= 500)) keep(report.serverErrors, finding(response.slice(0, 300), statuses.find((s) => s >= 500)));
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  if (statuses.length === 1 && statuses[0]! >= 400 && !isMatrixError(body)) keep(report.nonMatrixErrors, finding(response.slice(0, 300), statuses[0]));
}

/** The findings grouped by route, status and body kind, most frequent first. */
export function summarizeFindings(findings: FuzzFinding[]): string[] {
  const groups = new Map<string, { n: number; example: FuzzFinding }>();
  for (const f of findings) {
    const key = `${f.method} ${f.route} → ${f.status ?? '-'} (${f.bodyKind ?? 'no body'})`;
    const group = groups.get(key);
    if (group) group.n++;
    else groups.set(key, { n: 1, example: f });
  }
  return [...groups.entries()].sort((a, b) => b[1].n - a[1].n).map(([key, g]) => `${g.n}× ${key}: ${g.example.detail.replace(/\s+/g, ' ').slice(0, 160)}`);
}
