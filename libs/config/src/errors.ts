/** A configuration problem; the message names the key, the bad value and where it came from. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** Dotted key such as `federation.port`, when one key is at fault. */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
