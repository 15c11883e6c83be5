/**
 * Reads until `accept` takes the value (a read that throws counts as its error), every 200 ms; gives up after
 * `timeoutMs` naming what it waited for and the last value read.
 */
export async function waitUntil<T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what} (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
