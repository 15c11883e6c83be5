import type { Logger } from 'pino';

export interface ShutdownOptions {
  logger: Logger;
  /** Stops the service: stop taking work, finish or hand back what is in flight, close connections. */
  close: () => Promise<void>;
  /** After this long the process exits anyway. */
  timeoutMs?: number;
  /** Defaults to process.exit; tests pass their own. */
  exit?: (code: number) => void;
}

/**
 * SIGTERM/SIGINT close the service once and exit 0 (1 if closing failed or timed out); a second signal
 * exits at once. Returns a function that removes the handlers.
 */
export function installGracefulShutdown(options: ShutdownOptions): () => void {
  const { logger, close, timeoutMs = 10_000, exit = (code: number) => process.exit(code) } = options;
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    closing = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out');
      exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => {
        clearTimeout(timer);
        logger.info('stopped');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
