/**
 * One room's work at a time in this process. The bus keeps a room's inbound PDUs in order, but commands
 * for the same room (local events, membership handshakes) arrive on other subscriptions concurrently.
 */
export class RoomLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether some work holds or waits for the room (the partition consumer parks rather than wait). */
  isHeld(roomId: string): boolean {
    return this.tails.has(roomId);
  }

  async run<T>(roomId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(roomId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(roomId, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(roomId) === tail) this.tails.delete(roomId);
    }
  }
}
