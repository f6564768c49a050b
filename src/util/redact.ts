/**
 * Secret scrubbing for logs and error bodies (SPEC §11): API keys, bearer tokens and the
 * operator's configured secret patterns are replaced before a line is written or an envelope
 * is sent, wherever they appear (messages, fields, nested values, error causes).
 */

/** Shapes of credentials that must never be echoed, whatever field they travel in. */
export const DEFAULT_SECRET_PATTERNS: readonly string[] = [
  'Bearer\\s+[A-Za-z0-9._~+/=-]+',
  'sk-[A-Za-z0-9_-]{16,}',
  'hf_[A-Za-z0-9]{16,}',
];

export const REDACTED = '[redacted]';

export class Redactor {
  readonly #re: RegExp | undefined;

  constructor(patterns: readonly string[]) {
    this.#re = patterns.length === 0 ? undefined : new RegExp(patterns.map((p) => `(?:${p})`).join('|'), 'g');
  }

  scrub(text: string): string {
    return this.#re === undefined ? text : text.replace(this.#re, REDACTED);
  }

  /**
   * Scrubs a serialized JSON line. A match is cut at the first `"` or `\` so a replacement never
   * crosses a string boundary or an escape: the line stays valid JSON.
   */
  scrubSerialized(line: string): string {
    if (this.#re === undefined) return line;
    return line.replace(this.#re, (m) => {
      const cut = m.search(/["\\]/);
      return cut === -1 ? REDACTED : REDACTED + m.slice(cut);
    });
  }
}

/** Problems with the configured patterns (each must compile as a JavaScript regular expression). */
export function checkPatterns(patterns: readonly string[]): string[] {
  return patterns.flatMap((p, i) => {
    try {
      new RegExp(p);
      return [];
    } catch (err) {
      return [`logging.redact_patterns[${i}]: ${(err as Error).message}`];
    }
  });
}
