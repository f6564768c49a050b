/**
 * Helpers for checking a simulator dialect against an engine's fixtures: the shape of a JSON
 * value (its keys, nested, and the type of every leaf), so the simulator cannot drift from what
 * the engine's source writes while the values (ids, text, timestamps) differ freely.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseSse } from '../../src/util/sse-parser.js';

export const fixture = (engine: string, name: string) =>
  readFileSync(new URL(`../fixtures/${engine}/${name}`, import.meta.url), 'utf8');

/** The SSE `data:` payloads of a fixture or a response, in order. */
export const sseData = (text: string): string[] => parseSse(text).map((r) => r.data);

/** The shape of a JSON value: key → shape for objects, `[shape of the first]` for arrays, leaf types. */
export function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, shape(x)]),
    );
  return v === null ? 'null' : typeof v;
}

export const jsonShape = (text: string): unknown => shape(JSON.parse(text));

/**
 * Whether two shapes agree: the same keys everywhere, leaves of the same type, where a `null`
 * leaf on either side (an optional value the engine leaves empty) agrees with any leaf.
 */
export function sameShape(a: unknown, b: unknown): boolean {
  if (a === 'null' || b === 'null') return typeof a === 'string' && typeof b === 'string';
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return false;
    return a.length === 0 || b.length === 0 || sameShape(a[0], b[0]);
  }
  if (a !== null && typeof a === 'object' && b !== null && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.join() !== kb.join()) return false;
    return ka.every((k) => sameShape((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** Fails with both shapes shown unless they agree (`sameShape`). */
export function expectShape(actual: unknown, expected: unknown): void {
  expect(
    sameShape(actual, expected),
    `${JSON.stringify(actual)}\n  vs fixture\n${JSON.stringify(expected)}`,
  ).toBe(true);
}
