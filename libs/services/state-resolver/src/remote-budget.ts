// Remote I/O for inbound PDUs, in two modes: refused outright on a room partition's ordered path
// (the event is parked instead), and bounded by a per-event time budget when a parked event is handled.
import { AsyncLocalStorage } from 'node:async_hooks';
import { FederationClientError, type FederationHttpClient, type RequestOptions } from '@fedgate/federation-client';

export type FederationCalls = Pick<FederationHttpClient, 'getJson' | 'putJson' | 'postJson'>;

/** Handling this event would wait on a remote server: park it rather than hold the partition. */
export class RemoteIoNeeded extends Error {
  constructor(readonly call: string) {
    super(`it needs ${call}`);
    this.name = 'RemoteIoNeeded';
  }
}

/** Federation calls that never leave the process: each throws RemoteIoNeeded before any request is made. */
export function remoteIoRefused(): FederationCalls {
  const refuse = (method: string, destination: string, path: string): never => {
    throw new RemoteIoNeeded(`${method} ${path.split('?')[0]} on ${destination}`);
  };
  return {
    getJson: async (destination, path) => refuse('GET', destination, path),
    putJson: async (destination, path) => refuse('PUT', destination, path),
    postJson: async (destination, path) => refuse('POST', destination, path),
  };
}

const budgets = new AsyncLocalStorage<{ deadline: number; signal?: AbortSignal }>();

/** Runs `work` with remote calls (through budgetedFederation) ending by `deadline` at the latest, or when `signal` aborts. */
export function withRemoteBudget<T>(deadline: number, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return budgets.run({ deadline, signal }, work);
}

export class RemoteBudgetSpent extends FederationClientError {
  constructor(call: string) {
    super('TIMEOUT', `the time budget for this event was spent before ${call}`);
    this.name = 'RemoteBudgetSpent';
  }
}

/**
 * Federation calls whose timeout is the smaller of `perCallMs` and what is left of the budget of the
 * current withRemoteBudget; outside one they pass through unchanged.
 */
export function budgetedFederation(inner: FederationCalls, perCallMs: number, now: () => number = Date.now): FederationCalls {
  const within = <T>(call: string, options: RequestOptions | undefined, send: (options: RequestOptions) => Promise<T>): Promise<T> => {
    const budget = budgets.getStore();
    if (!budget) return send(options ?? {});
    const remaining = budget.deadline - now();
    if (remaining <= 0 || budget.signal?.aborted) throw new RemoteBudgetSpent(call);
    const timeoutMs = Math.min(options?.timeoutMs ?? perCallMs, remaining);
    // Enforced here too: the HTTPS transport's request timeout does not cover connecting and the TLS
    // handshake (its own connect timeout does), and a tarpit may stall right there.
    return answerWithin(
      send({ ...options, timeoutMs }),
      timeoutMs,
      () => new FederationClientError('TIMEOUT', `${call} got no answer within ${timeoutMs} ms`),
      budget.signal,
      () => new RemoteBudgetSpent(call),
    );
  };
  return {
    getJson: async (destination, path, options) => within(`GET ${path} on ${destination}`, options, (o) => inner.getJson(destination, path, o)),
    putJson: async (destination, path, body, options) => within(`PUT ${path} on ${destination}`, options, (o) => inner.putJson(destination, path, body, o)),
    postJson: async (destination, path, body, options) => within(`POST ${path} on ${destination}`, options, (o) => inner.postJson(destination, path, body, o)),
  };
}

/** `answer`, or `timedOut()` after `timeoutMs`, or `aborted()` when `signal` aborts: whichever comes first. */
export function answerWithin<T>(answer: Promise<T>, timeoutMs: number, timedOut: () => Error, signal: AbortSignal | undefined, aborted: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted());
    const timer = setTimeout(() => reject(timedOut()), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    answer.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}
