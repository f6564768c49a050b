/**
 * JSON Schema (the OpenAPI 3.1 subset the documents use) to fast-check arbitraries of values
 * that look valid: every required property, some optional ones, values within the declared
 * bounds. Hints replace the generator of a property by name, so ids, models and engines point
 * at things the orchestrator under test actually has.
 */
import fc from 'fast-check';
import type { OpenApiDocument } from '../../src/http/openapi.js';
import { resolveRef } from './operations.js';

type Schema = Record<string, unknown>;

/** Generators by property name, used instead of the schema's wherever that name appears. */
export type Hints = Readonly<Record<string, fc.Arbitrary<unknown>>>;

const MAX_ITEMS = 3;
const MAX_STRING = 24;

function isConstraintOnly(s: Schema): boolean {
  return !('type' in s) && !('properties' in s) && !('$ref' in s) && !('enum' in s) && !('const' in s);
}

/** Property names a `not: {required}` / `not: {anyOf: [{required}]}` branch forbids. */
function forbidden(branch: Schema): string[] {
  const not = branch['not'] as Schema | undefined;
  if (not === undefined) return [];
  const direct = (not['required'] as string[] | undefined) ?? [];
  const any = ((not['anyOf'] as Schema[] | undefined) ?? []).flatMap(
    (b) => (b['required'] as string[]) ?? [],
  );
  return [...direct, ...any];
}

function merged(doc: OpenApiDocument, parts: readonly unknown[]): Schema {
  const out: Schema = { type: 'object', properties: {}, required: [] };
  for (const p of parts) {
    const s = resolveRef(doc, p);
    Object.assign(out['properties'] as Schema, (s['properties'] as Schema | undefined) ?? {});
    (out['required'] as string[]).push(...((s['required'] as string[] | undefined) ?? []));
    if (s['oneOf'] !== undefined) out['oneOf'] = s['oneOf'];
  }
  return out;
}

function stringArb(s: Schema): fc.Arbitrary<string> {
  if (s['format'] === 'uuid') return fc.uuid();
  if (typeof s['pattern'] === 'string') return fc.stringMatching(new RegExp(s['pattern']));
  const minLength = typeof s['minLength'] === 'number' ? s['minLength'] : 0;
  const maxLength = Math.max(
    minLength,
    Math.min(typeof s['maxLength'] === 'number' ? s['maxLength'] : MAX_STRING, MAX_STRING),
  );
  return fc.string({ minLength, maxLength });
}

function numberArb(s: Schema, integer: boolean): fc.Arbitrary<number> {
  const num = (k: string): number | undefined => (typeof s[k] === 'number' ? s[k] : undefined);
  const exMin = num('exclusiveMinimum');
  const exMax = num('exclusiveMaximum');
  const min = num('minimum') ?? exMin ?? -1_000_000;
  const max = num('maximum') ?? exMax ?? 1_000_000;
  if (integer) {
    return fc.integer({
      min: Math.max(Math.ceil(exMin !== undefined ? exMin + 1 : min), Number.MIN_SAFE_INTEGER),
      max: Math.min(Math.floor(exMax !== undefined ? exMax - 1 : max), Number.MAX_SAFE_INTEGER),
    });
  }
  return fc.double({
    min,
    max,
    minExcluded: exMin !== undefined,
    maxExcluded: exMax !== undefined,
    noNaN: true,
    noDefaultInfinity: true,
  });
}

function objectArb(doc: OpenApiDocument, s: Schema, hints: Hints, depth: number): fc.Arbitrary<unknown> {
  const props = (s['properties'] as Record<string, unknown> | undefined) ?? {};
  const required = new Set((s['required'] as string[] | undefined) ?? []);
  const branches = ((s['oneOf'] as unknown[] | undefined) ?? []).map((b) => resolveRef(doc, b));
  const record = (extraRequired: readonly string[], excluded: readonly string[]) => {
    const model: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [name, ps] of Object.entries(props)) {
      if (excluded.includes(name)) continue;
      model[name] = hints[name] ?? schemaArbitrary(doc, ps, hints, depth + 1);
    }
    const req = [...required, ...extraRequired].filter((k) => k in model);
    return fc.record(model, { requiredKeys: req });
  };
  if (Object.keys(props).length === 0) {
    return s['additionalProperties'] === false
      ? fc.constant({})
      : fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
  }
  if (branches.length > 0 && branches.every(isConstraintOnly)) {
    return fc.oneof(
      ...branches.map((b) => record((b['required'] as string[] | undefined) ?? [], forbidden(b))),
    );
  }
  return record([], []);
}

/** A generator of values that look valid for `schema` (a schema of `doc`). */
export function schemaArbitrary(
  doc: OpenApiDocument,
  schema: unknown,
  hints: Hints = {},
  depth = 0,
): fc.Arbitrary<unknown> {
  const s = resolveRef(doc, schema);
  if (depth > 8) return fc.constant(null);
  if ('const' in s) return fc.constant(s['const']);
  if (Array.isArray(s['enum'])) return fc.constantFrom(...(s['enum'] as unknown[]));
  if (Array.isArray(s['allOf'])) return objectArb(doc, merged(doc, s['allOf']), hints, depth);
  const alternatives = (s['oneOf'] ?? s['anyOf']) as unknown[] | undefined;
  if (alternatives !== undefined && s['type'] === undefined) {
    return fc.oneof(...alternatives.map((a) => schemaArbitrary(doc, a, hints, depth + 1)));
  }
  const type = s['type'];
  if (Array.isArray(type)) {
    return fc.oneof(...(type as string[]).map((t) => schemaArbitrary(doc, { ...s, type: t }, hints, depth)));
  }
  switch (type) {
    case 'string':
      return stringArb(s);
    case 'integer':
      return numberArb(s, true);
    case 'number':
      return numberArb(s, false);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const minLength = typeof s['minItems'] === 'number' ? s['minItems'] : 0;
      const maxLength = Math.max(
        minLength,
        Math.min(typeof s['maxItems'] === 'number' ? s['maxItems'] : MAX_ITEMS, MAX_ITEMS),
      );
      return fc.array(schemaArbitrary(doc, s['items'] ?? {}, hints, depth + 1), { minLength, maxLength });
    }
    case 'object':
      return objectArb(doc, s, hints, depth);
    default:
      // No type: any JSON value (artifact content, for one).
      return 'properties' in s ? objectArb(doc, s, hints, depth) : fc.jsonValue({ maxDepth: 2 });
  }
}
