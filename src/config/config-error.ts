/**
 * An invalid configuration, in a file of its own so that engine drivers (which validate their
 * pools' fields and refuse unusable model files) can raise it without importing the resolver
 * that imports them.
 */

/** An invalid configuration: every problem found, each prefixed with the path of the offending field. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  /** The file (or other source) the configuration came from, when known. */
  readonly source: string | undefined;

  constructor(problems: readonly string[], source?: string) {
    const head = source === undefined ? 'invalid configuration' : `invalid configuration in ${source}`;
    super(`${head}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = [...problems];
    this.source = source;
  }
}
