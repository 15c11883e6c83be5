import pino from 'pino';
import { installGracefulShutdown } from './shutdown';

describe('installGracefulShutdown', () => {
  const logger = pino({ level: 'silent' });

  it('closes once on SIGTERM and exits 0', async () => {
    const close = jest.fn(() => Promise.resolve());
    const exited = new Promise<number>((resolve) => {
      const remove = installGracefulShutdown({ logger, close, exit: (code) => (remove(), resolve(code)) });
    });
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exited).toBe(0);
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('exits 1 when closing fails, and at once on a second signal', async () => {
    const codes: number[] = [];
    let finishClose: (err: Error) => void = () => undefined;
    const close = () => new Promise<void>((_, reject) => (finishClose = reject));
    const remove = installGracefulShutdown({ logger, close, exit: (code) => codes.push(code) });
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGINT', 'SIGINT');
    expect(codes).toEqual([1]);
    finishClose(new Error('stuck'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(codes).toEqual([1, 1]);
    remove();
  });
});
