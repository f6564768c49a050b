import { pino, type Logger, type LoggerOptions } from 'pino';
import { DEFAULT_SECRET_PATTERNS, Redactor, type SecretSet } from './redact.js';

export type { Logger };

/** Paths that must never reach a log line (SPEC §11). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'apiKey',
  'api_key',
  'key',
  '*.apiKey',
  '*.api_key',
];

export interface LoggerFactoryOptions {
  level: LoggerOptions['level'];
  /** Where log lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
  /** Secret patterns scrubbed from every message and field (default: bearer tokens, API keys). */
  redactPatterns?: readonly string[];
  /** The configuration's secrets (`configSecrets(config)`), scrubbed as well wherever they appear. */
  secrets?: SecretSet;
}

/** Structured JSON logs (SPEC §12): one object per line, secrets redacted. */
export function createLogger(opts: LoggerFactoryOptions): Logger {
  const redactor = new Redactor(opts.redactPatterns ?? DEFAULT_SECRET_PATTERNS, opts.secrets);
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: 'orchestratord' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // One pass over each serialized line: cheaper than copying every logged object.
    hooks: { streamWrite: (line) => redactor.scrubSerialized(line) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
