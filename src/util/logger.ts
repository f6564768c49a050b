import { pino, type Logger, type LoggerOptions } from 'pino';

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
}

/** Structured JSON logs (SPEC §12): one object per line, secrets redacted. */
export function createLogger(opts: LoggerFactoryOptions): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: 'orchestratord' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
