/**
 * Deterministic JSON that satisfies a JSON schema: what the simulated engines emit under
 * constrained decoding (`response_format` json_object / json_schema), so tests can check that the
 * constraint reached the engine and that the output parses and validates.
 *
 * Covers the subset of JSON Schema that structured-output requests use in practice: `object`
 * (`properties`; every property is emitted, so `required` always holds), `string` (`enum`,
 * `minLength`/`maxLength`), `integer`/`number` (`minimum`/`maximum`, exclusive bounds), `boolean`,
 * `null`, `array` (`items`, `minItems`/`maxItems`), `enum`, `const`, `type` lists, `anyOf`/`oneOf`
 * (first branch) and nesting. Keywords outside the subset are ignored.
 */
import { mulberry32 } from '../util/mulberry32.js';

type Schema = Readonly<Record<string, unknown>>;

const WORDS = ['alpha', 'bravo', 'delta', 'echo', 'kilo', 'lima', 'oscar', 'sierra', 'tango', 'zulu'];

const rng = mulberry32;

const isSchema = (v: unknown): v is Schema => v !== null && typeof v === 'object' && !Array.isArray(v);
const finite = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

function pick<T>(items: readonly T[], next: () => number): T {
  return items[Math.floor(next() * items.length) % items.length] as T;
}

function typeOf(schema: Schema): string | undefined {
  const t = schema['type'];
  if (typeof t === 'string') return t;
  // A type list: the first non-null type keeps the value informative.
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') ?? t[0]) as string | undefined;
  if (isSchema(schema['properties'])) return 'object';
  if (schema['items'] !== undefined) return 'array';
  return undefined;
}

function stringValue(schema: Schema, next: () => number): string {
  const min = Math.max(0, Math.floor(finite(schema['minLength']) ?? 1));
  const max = Math.max(min, Math.floor(finite(schema['maxLength']) ?? Math.max(min, 12)));
  let s = pick(WORDS, next);
  while (s.length < min) s += `-${pick(WORDS, next)}`;
  return s.slice(0, max).padEnd(min, 'x');
}

function numberValue(schema: Schema, integer: boolean, next: () => number): number {
  const min = finite(schema['minimum']);
  const max = finite(schema['maximum']);
  const xmin = finite(schema['exclusiveMinimum']);
  const xmax = finite(schema['exclusiveMaximum']);
  if (integer) {
    const lo = Math.ceil(min ?? (xmin !== undefined ? Math.floor(xmin) + 1 : 0));
    const hi = Math.floor(max ?? (xmax !== undefined ? Math.ceil(xmax) - 1 : lo + 100));
    return hi < lo ? lo : lo + Math.floor(next() * (hi - lo + 1));
  }
  const lo = min ?? xmin ?? 0;
  const hi = max ?? xmax ?? lo + 100;
  if (hi <= lo) return lo;
  // Inside the middle of the range, so exclusive bounds hold after rounding to two decimals.
  const v = Math.round((lo + (0.1 + 0.8 * next()) * (hi - lo)) * 100) / 100;
  return Math.min(Math.max(v, lo), hi);
}

function valueFor(schema: Schema, next: () => number, depth: number): unknown {
  if ('const' in schema) return schema['const'];
  const en = schema['enum'];
  if (Array.isArray(en) && en.length > 0) return pick(en as unknown[], next);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && isSchema(branches[0])) return valueFor(branches[0], next, depth);
  }
  switch (typeOf(schema) ?? 'untyped') {
    case 'string':
      return stringValue(schema, next);
    case 'integer':
      return numberValue(schema, true, next);
    case 'number':
      return numberValue(schema, false, next);
    case 'boolean':
      return next() < 0.5;
    case 'null':
      return null;
    case 'array': {
      const items = isSchema(schema['items']) ? schema['items'] : {};
      const min = Math.max(0, Math.floor(finite(schema['minItems']) ?? 1));
      const max = Math.max(min, Math.floor(finite(schema['maxItems']) ?? min + 2));
      const n = min + Math.floor(next() * (max - min + 1));
      return Array.from({ length: n }, () => valueFor(items, next, depth + 1));
    }
    case 'object': {
      const props = isSchema(schema['properties']) ? schema['properties'] : {};
      const out: Record<string, unknown> = {};
      for (const [name, sub] of Object.entries(props))
        out[name] = valueFor(isSchema(sub) ? sub : {}, next, depth + 1);
      if (Object.keys(props).length === 0 && depth === 0) out['result'] = pick(WORDS, next);
      return out;
    }
    default:
      // No type at all (`{}` or json_object): a small object at the top, a word below.
      return depth === 0 ? { result: pick(WORDS, next) } : pick(WORDS, next);
  }
}

/**
 * JSON text, deterministic in `(schema, seed)` and varying with `seed`, that validates against
 * `schema` (within the subset above). `undefined` or `{}` gives a small JSON object, as
 * `response_format: {type: 'json_object'}` asks for.
 */
export function outputForSchema(schema: Readonly<Record<string, unknown>> | undefined, seed: number): string {
  return JSON.stringify(valueFor(schema ?? {}, rng(seed), 0));
}
