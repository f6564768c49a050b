/**
 * The JSON body parser of both planes (SPEC §2.5): bounded nesting and finite numbers, checked
 * before any validator or handler sees the body, so hostile shapes are a 400, never a 500.
 */
import type { FastifyInstance } from 'fastify';
import { OrchError } from '../errors/orch-error.js';

/**
 * Deepest nesting of arrays and objects a request body may have. Every documented body is
 * shallower than 10 levels (artifact `content` and `metadata` are free-form, hence the margin);
 * deeper ones would cost recursion in the validator and the store's canonical JSON.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * The deepest nesting of `text` as JSON, scanned without parsing (strings and their escapes
 * skipped). Stops as soon as it exceeds `limit`, so a 1 MB nested body costs one short scan.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The first non-finite number in a parsed body (`1e999` parses to Infinity), as a field path. */
export function nonFiniteField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path === '' ? '(body)' : path;
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const hit = nonFiniteField(v, `${path}[${i}]`);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const hit = nonFiniteField(v, path === '' ? k : `${path}.${k}`);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/**
 * Replaces Fastify's JSON parser: an empty body is no body (routes that need one refuse its
 * absence by name), a body nested deeper than {@link MAX_JSON_DEPTH} or holding a number JSON
 * cannot represent as a finite double is INVALID_PARAMS. Prototype poisoning stays refused, as
 * with Fastify's own parser.
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new OrchError('INVALID_PARAMS', `(body): nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    void parse(req, text, (err, value: unknown) => {
      if (err) {
        done(err, undefined);
        return;
      }
      const field = nonFiniteField(value);
      if (field !== undefined)
        done(new OrchError('INVALID_PARAMS', `${field}: must be a finite number`), undefined);
      else done(null, value);
    });
  });
}
