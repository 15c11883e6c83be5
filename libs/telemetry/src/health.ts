// What the orchestrator asks a process (Kubernetes probes, compose healthchecks), served beside /metrics:
//   /livez     the process runs (its event loop answers); never depends on the bus or store, whose
//              outages a restart would not cure;
//   /startupz  the service has started: every app is up and listening;
//   /readyz    started, and every readiness check passes now: the bus and store answer, and each stage
//              with elastic ownership holds its membership lease. 503 with the reasons otherwise.

export type ReadinessCheck = () => Promise<void>;

/** A check that takes longer counts as failed: a probe must answer within its own timeout. */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

const checks = new Map<string, ReadinessCheck>();
let started = false;

/** Adds a check (a rejection is the reason it fails); returns its removal. */
export function registerReadinessCheck(name: string, check: ReadinessCheck): () => void {
  checks.set(name, check);
  return () => {
    if (checks.get(name) === check) checks.delete(name);
  };
}

/** Set once every app of the process is up; cleared when shutdown begins (so traffic stops first). */
export function markServiceStarted(value: boolean): void {
  started = value;
}

export interface Readiness {
  ready: boolean;
  started: boolean;
  /** `ok`, or why the check failed. */
  checks: Record<string, string>;
}

export async function readiness(timeoutMs = READINESS_CHECK_TIMEOUT_MS): Promise<Readiness> {
  const results = await Promise.all([...checks].map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const));
  return { ready: started && results.every(([, result]) => result === 'ok'), started, checks: Object.fromEntries(results) };
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([check().then(() => 'ok'), timeout]);
  } catch (err) {
    // The reason is served unauthenticated: no credentials of a connection URL in it.
    return String((err as Error)?.message ?? err).replace(/\/\/[^/@\s]+@/g, '//[REDACTED]@').slice(0, 200) || 'failed';
  } finally {
    clearTimeout(timer);
  }
}

/** Answers a health path, or returns false for any other path. */
export async function answerHealth(path: string): Promise<{ status: number; body: unknown } | false> {
  switch (path) {
    case '/livez':
      return { status: 200, body: { status: 'ok' } };
    case '/startupz':
      return started ? { status: 200, body: { status: 'started' } } : { status: 503, body: { status: 'starting' } };
    case '/readyz': {
      const result = await readiness();
      return { status: result.ready ? 200 : 503, body: result };
    }
    default:
      return false;
  }
}
