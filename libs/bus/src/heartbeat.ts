/**
 * Runs a handler while telling the bus, every third of the ack wait, that it is still at work. So an ack
 * wait can be short (a message taken by a process that died is redelivered soon, to whoever owns its
 * partition now) without redelivering the message of a handler that is merely slow.
 */
export async function whileWorking<T>(ackWaitMs: number, working: () => void, handle: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => {
    try {
      working();
    } catch {
      // The connection is away: the message is redelivered once it is back, and the handler is idempotent.
    }
  }, Math.max(100, Math.floor(ackWaitMs / 3)));
  beat.unref();
  try {
    return await handle();
  } finally {
    clearInterval(beat);
  }
}
