/**
 * Secret scrubbing for logs and error bodies (SPEC §11): API keys, bearer tokens, the operator's
 * configured secret patterns and every secret the configuration names (engine keys, node
 * credentials, collector credentials, the PostgreSQL URL) are replaced before a line is written or an envelope is sent,
 * wherever they appear (messages, fields, nested values, error causes, echoed client input).
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ResolvedConfig } from '../config/resolved-config.js';

/** Shapes of credentials that must never be echoed, whatever field they travel in. */
export const DEFAULT_SECRET_PATTERNS: readonly string[] = [
  'Bearer\\s+[A-Za-z0-9._~+/=-]+',
  'sk-[A-Za-z0-9_-]{16,}',
  'hf_[A-Za-z0-9]{16,}',
];

export const REDACTED = '[redacted]';

/**
 * Shortest literal secret scrubbed: shorter strings (a 1-character key in a test) would take
 * ordinary words out of every log line.
 */
export const MIN_LITERAL_CHARS = 8;

/**
 * Shortest run of text checked against the configured key hashes. API keys are configured by
 * their SHA-256 only, so a key quoted back (in `model_ref`, a path, a header) is found by hashing
 * the words of a text; shorter words are never keys worth the name and are not hashed.
 */
export const MIN_HASHED_CHARS = 16;
const MAX_HASHED_CHARS = 512;
const CHECKED_WORDS = 4_096;

/**
 * Secrets known to this process: literals (scrubbed wherever they occur) and SHA-256 digests of
 * keys whose plaintext is never configured (API keys, node credentials; a word of a text whose
 * digest matches is scrubbed). It grows at run time: a key that authenticates is learned as a
 * literal, so it is scrubbed even where it is not a word of its own (`abc<key>def`).
 */
export class SecretSet {
  readonly #literals = new Set<string>();
  readonly #hashes = new Set<string>();
  #version = 0;

  readonly #maxLiterals: number;

  /** @param init.maxLiterals the oldest literals are forgotten beyond it (keys of past launches). */
  constructor(
    init: {
      literals?: readonly (string | undefined)[];
      sha256?: readonly string[];
      maxLiterals?: number;
    } = {},
  ) {
    this.#maxLiterals = init.maxLiterals ?? Number.POSITIVE_INFINITY;
    for (const l of init.literals ?? []) if (l !== undefined) this.addLiteral(l);
    for (const h of init.sha256 ?? []) this.#hashes.add(h.toLowerCase());
  }

  /** Adds a secret scrubbed wherever it appears (ignored below {@link MIN_LITERAL_CHARS}, or when number-like). */
  addLiteral(secret: string): void {
    const s = secret.trim();
    // A number-like literal would also match numbers outside strings and break a JSON log line.
    if (s.length < MIN_LITERAL_CHARS || /^[\d.eE+-]+$/.test(s) || this.#literals.has(s)) return;
    this.#literals.add(s);
    if (this.#literals.size > this.#maxLiterals) {
      const oldest = this.#literals.values().next().value;
      if (oldest !== undefined) this.#literals.delete(oldest);
    }
    this.#version++;
  }

  /** Whether `text` is, as a whole, one of the secrets (a literal or a hashed key). */
  isSecret(text: string): boolean {
    return this.#literals.has(text) || (this.#hashes.size > 0 && this.#hashes.has(sha256(text)));
  }

  get literals(): ReadonlySet<string> {
    return this.#literals;
  }

  get hashes(): ReadonlySet<string> {
    return this.#hashes;
  }

  /** Changes whenever a literal is added (redactors rebuild their expression then). */
  get version(): number {
    return this.#version;
  }
}

/**
 * Keys this process generates (engine keys per launch): random, so they never match ordinary
 * text, and scrubbed by every redactor of the process whichever configuration they belong to.
 * Bounded: the keys of the latest launches (an engine restarted many times leaves old keys
 * nothing accepts any more).
 */
export const GENERATED_SECRETS = new SecretSet({ maxLiterals: 64 });

const sha256 = (text: string): string => hash('sha256', text, 'hex');
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

// Words of a text that could be a key: delimited by whitespace, quotes, escapes and brackets.
const WORD = /[^\s"'`\\<>(){}[\],;]+/g;
// Where a word is split into the parts a key may hide between (a path, a query, `a=b`, `k:v`).
const PART = /[/?&=:@#|]+/;

export class Redactor {
  readonly #patterns: readonly string[];
  readonly #sets: readonly SecretSet[];
  #re: RegExp | undefined;
  #builtAt = -1;
  readonly #checked = new Map<string, boolean>();

  constructor(patterns: readonly string[], secrets?: SecretSet) {
    this.#patterns = patterns;
    this.#sets = secrets === undefined ? [GENERATED_SECRETS] : [secrets, GENERATED_SECRETS];
  }

  #expression(): RegExp | undefined {
    const version = this.#sets.reduce((n, s) => n + s.version, 0);
    if (version !== this.#builtAt) {
      this.#builtAt = version;
      // Longest literal first: a secret that contains another is replaced whole.
      const literals = [...new Set(this.#sets.flatMap((s) => [...s.literals]))]
        .flatMap((l) => {
          const json = JSON.stringify(l).slice(1, -1);
          return json === l ? [l] : [l, json];
        })
        .sort((a, b) => b.length - a.length)
        .map(escapeRe);
      const all = [...literals, ...this.#patterns];
      this.#re = all.length === 0 ? undefined : new RegExp(all.map((p) => `(?:${p})`).join('|'), 'g');
    }
    return this.#re;
  }

  #hashed(text: string): string {
    if (!this.#sets.some((s) => s.hashes.size > 0)) return text;
    return text.replace(WORD, (word) => {
      if (word.length < MIN_HASHED_CHARS) return word;
      if (this.#matches(word)) return REDACTED;
      const trimmed = word.replace(/[.:!?]+$/, '');
      if (trimmed !== word && this.#matches(trimmed)) return REDACTED + word.slice(trimmed.length);
      if (!PART.test(word)) return word;
      return word
        .split(/([/?&=:@#|]+)/)
        .map((part, i) => {
          if (i % 2 === 1 || part.length < MIN_HASHED_CHARS) return part;
          if (this.#matches(part)) return REDACTED;
          const t = part.replace(/[.:!?]+$/, '');
          return t !== part && this.#matches(t) ? REDACTED + part.slice(t.length) : part;
        })
        .join('');
    });
  }

  #matches(word: string): boolean {
    if (word.length > MAX_HASHED_CHARS) return false;
    // Log lines repeat their words (task ids, pool ids): each is hashed once while it recurs.
    const seen = this.#checked.get(word);
    if (seen !== undefined) return seen;
    const digest = sha256(word);
    const found = this.#sets.some((s) => s.hashes.has(digest));
    if (this.#checked.size >= CHECKED_WORDS) this.#checked.clear();
    this.#checked.set(word, found);
    return found;
  }

  /** Whether `text`, as a whole, is a configured or learned secret (e.g. a key sent as a correlation id). */
  isSecret(text: string): boolean {
    return this.#sets.some((s) => s.isSecret(text));
  }

  scrub(text: string): string {
    const re = this.#expression();
    return this.#hashed(re === undefined ? text : text.replace(re, REDACTED));
  }

  /**
   * Scrubs a serialized JSON line. A pattern match is cut at the first `"` or `\` so a
   * replacement never crosses a string boundary or an escape: the line stays valid JSON.
   */
  scrubSerialized(line: string): string {
    const re = this.#expression();
    const out =
      re === undefined
        ? line
        : line.replace(re, (m) => {
            const cut = m.search(/["\\]/);
            return cut === -1 ? REDACTED : REDACTED + m.slice(cut);
          });
    return this.#hashed(out);
  }
}

const memo = new WeakMap<ResolvedConfig, SecretSet>();

/**
 * The secrets a configuration names, one set per configuration (the logger and the HTTP server
 * share it, so a key learned at authentication is scrubbed from both): API key and node
 * credential digests, engine API keys, this node's own credential and the PostgreSQL URL (and its
 * password) as literals.
 */
export function configSecrets(config: ResolvedConfig): SecretSet {
  const known = memo.get(config);
  if (known !== undefined) return known;
  const postgres = process.env[config.storage.postgresUrlEnv];
  const set = new SecretSet({
    sha256: [...config.auth.keys.map((k) => k.sha256), ...config.nodes.values()],
    literals: [
      ...config.pools.map((p) => p.launch.apiKey),
      // Collector headers that carry credentials (others, e.g. a content type, are not secret).
      ...Object.entries(config.tracing?.headers ?? {})
        .filter(([name]) => /auth|key|token|secret|password/i.test(name))
        .map(([, value]) => value),
      postgres === undefined || postgres === '' ? undefined : postgres,
      postgres === undefined ? undefined : passwordOf(postgres),
      nodeCredential(config),
    ],
  });
  memo.set(config, set);
  return set;
}

function passwordOf(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p === '' ? undefined : decodeURIComponent(p);
  } catch {
    return undefined;
  }
}

function nodeCredential(config: ResolvedConfig): string | undefined {
  const node = config.node;
  if (node === undefined) return undefined;
  if (node.credentialFile === undefined) return process.env[node.credentialEnv];
  try {
    return readFileSync(node.credentialFile, 'utf8');
  } catch {
    // pool-managerd reports an unreadable credential itself when it starts.
    return undefined;
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
