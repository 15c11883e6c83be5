// Test files start their peers side by side (two gateways, a gateway and a Synapse, NATS and a database). With a
// bare Promise.all, one failed start leaves the others running: nothing holds them, afterAll finds the variables
// unset, and they outlive the run. startTogether stops what did start before it throws.

/** Anything a test starts: gateways `destroy()`, servers and processes `stop()`. */
export type Started = { destroy(): Promise<unknown> } | { stop(): Promise<unknown> };

async function tearDown(started: Started): Promise<void> {
  await ('destroy' in started ? started.destroy() : started.stop());
}

/**
 * Waits for every start; when all succeed, their results in order. When any fails, every one that succeeded is
 * torn down (failures to tear down are ignored: the start's error is the one to report) and the first error is
 * thrown, with the others' as its `cause` when there are several.
 */
export async function startTogether<T extends readonly Started[]>(starts: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly Promise<Started>[]);
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
  if (failures.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<Started>).value) as unknown as T;
  await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? tearDown(s.value).catch(() => undefined) : undefined)));
  const [first, ...others] = failures;
  if (others.length > 0 && first instanceof Error && first.cause === undefined) first.cause = others;
  throw first;
}
