// The embedded gateway is its SQLite store's only process: its state-resolver answers reads of what it wrote from
// memory and keeps the rooms' redaction claims in memory (the sole-writer caches). A second gateway started on the
// same data directory (a rolling restart that starts the new process before the old one stops, a copy-pasted
// service unit) would make both caches wrong. So the embedded gateway holds a store lease for as long as it runs,
// refuses to start while another live process holds it, and stops if it ever finds the lease taken.
import type { LeaseRepository } from '@fedgate/store';

export const EMBEDDED_WRITER_LEASE = 'embedded-gateway:writer';

export interface WriterLeaseOptions {
  leases: LeaseRepository;
  /** The store's file, for the error an operator reads. */
  storePath: string;
  host: string;
  pid: number;
  /** Unique per start of a process (two starts in one process, or a restarted container reusing pid 1). */
  token: string;
  ttlMs?: number;
  renewEveryMs?: number;
  /** Whether a process of this host is alive (`process.kill(pid, 0)`). */
  isAlive?: (pid: number) => boolean;
  /** The lease was taken by another process (this one was frozen past its expiry): the caller must stop. */
  onLost: (holder: string | undefined) => void;
  /** A renewal failed (the store unreachable); the lease is kept until its expiry, renewals go on. */
  onRenewFailed?: (err: unknown) => void;
}

export interface WriterLease {
  readonly holder: string;
  /** Renews now, as the timer does (a renewal that finds the lease taken calls onLost). */
  renewNow(): Promise<void>;
  release(): Promise<void>;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly storePath: string,
    readonly holder: string,
    readonly expiresTs: number,
  ) {
    super(
      `the store ${storePath} is in use by another fedgate process (${holder}, lease until ${new Date(expiresTs).toISOString()}): ` +
        'an embedded gateway must be the only process on its data directory; stop the other one (a process that died ' +
        'on another host lets go when its lease expires)',
    );
    this.name = 'DataDirInUseError';
  }
}

const DEFAULT_TTL_MS = 30_000;
/** Holders started in this process and not released: a holder naming our own pid is alive only if it is one of these. */
const heldInThisProcess = new Set<string>();

export function writerHolder(host: string, pid: number, token: string): string {
  return `${host}/${pid}/${token}`;
}

function parseHolder(holder: string): { host: string; pid: number } | undefined {
  const match = /^(.*)\/(\d+)\/[^/]+$/.exec(holder);
  return match ? { host: match[1], pid: Number(match[2]) } : undefined;
}

export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A holder on this host whose process is gone (killed, crashed): its lease need not run out before a restart. */
function holderIsDead(holder: string, options: WriterLeaseOptions): boolean {
  const parsed = parseHolder(holder);
  if (!parsed || parsed.host !== options.host) return false;
  if (parsed.pid === options.pid) return !heldInThisProcess.has(holder);
  return !(options.isAlive ?? processIsAlive)(parsed.pid);
}

export async function holdEmbeddedWriterLease(options: WriterLeaseOptions): Promise<WriterLease> {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const holder = writerHolder(options.host, options.pid, options.token);
  const { leases } = options;
  if (!(await leases.tryAcquire(EMBEDDED_WRITER_LEASE, holder, ttlMs))) {
    const current = (await leases.live(EMBEDDED_WRITER_LEASE)).find((lease) => lease.name === EMBEDDED_WRITER_LEASE);
    if (current && holderIsDead(current.holder, options)) await leases.release(EMBEDDED_WRITER_LEASE, current.holder);
    if (!(await leases.tryAcquire(EMBEDDED_WRITER_LEASE, holder, ttlMs))) {
      const now = (await leases.live(EMBEDDED_WRITER_LEASE)).find((lease) => lease.name === EMBEDDED_WRITER_LEASE);
      throw new DataDirInUseError(options.storePath, now?.holder ?? current?.holder ?? 'unknown', now?.expiresTs ?? current?.expiresTs ?? Date.now() + ttlMs);
    }
  }
  heldInThisProcess.add(holder);
  let released = false;
  const renew = async () => {
    try {
      const renewed = await leases.renewMany([EMBEDDED_WRITER_LEASE], holder, ttlMs);
      if (released || renewed.includes(EMBEDDED_WRITER_LEASE)) return;
      released = true;
      clearInterval(timer);
      heldInThisProcess.delete(holder);
      const taker = (await leases.live(EMBEDDED_WRITER_LEASE).catch(() => [])).find((lease) => lease.name === EMBEDDED_WRITER_LEASE);
      options.onLost(taker?.holder);
    } catch (err) {
      options.onRenewFailed?.(err);
    }
  };
  const timer = setInterval(() => void renew(), options.renewEveryMs ?? ttlMs / 3);
  timer.unref();
  return {
    holder,
    renewNow: renew,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      heldInThisProcess.delete(holder);
      await leases.release(EMBEDDED_WRITER_LEASE, holder);
    },
  };
}
