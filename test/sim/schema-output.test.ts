/** The simulator's constrained-decoding output: valid JSON for each schema, deterministic in the seed. */
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { outputForSchema } from '../../src/sim/schema-output.js';

const SCHEMAS: Record<string, Record<string, unknown>> = {
  flat: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 3, maxLength: 8 },
      age: { type: 'integer', minimum: 18, maximum: 99 },
      score: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      active: { type: 'boolean' },
    },
    required: ['name', 'age', 'score', 'active'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      kind: { enum: ['cat', 'dog', 'bird'] },
      version: { const: 2 },
      tags: { type: 'array', items: { type: 'string', maxLength: 4 }, minItems: 2, maxItems: 3 },
      owner: {
        type: 'object',
        properties: { id: { type: 'integer', minimum: -5, maximum: -1 }, note: { type: ['string', 'null'] } },
        required: ['id', 'note'],
      },
      color: { type: 'string', enum: ['red', 'green'] },
    },
    required: ['kind', 'version', 'tags', 'owner', 'color'],
  },
  array: { type: 'array', items: { type: 'number', minimum: 10, maximum: 20 }, minItems: 1 },
  long: { type: 'string', minLength: 30 },
  anyOf: {
    anyOf: [{ type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] }, { type: 'null' }],
  },
};

describe('outputForSchema', () => {
  const ajv = new Ajv({ strict: false });
  for (const [name, schema] of Object.entries(SCHEMAS))
    it(`${name}: valid JSON for seeds 0..19`, () => {
      const validate = ajv.compile(schema);
      for (let seed = 0; seed < 20; seed++) {
        const text = outputForSchema(schema, seed);
        expect(validate(JSON.parse(text)), `${text}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    });

  it('deterministic in the seed, and varies with it', () => {
    const schema = SCHEMAS['flat'];
    expect(outputForSchema(schema, 7)).toBe(outputForSchema(schema, 7));
    const seen = new Set(Array.from({ length: 10 }, (_, s) => outputForSchema(schema, s)));
    expect(seen.size).toBeGreaterThan(5);
  });

  it('no schema (json_object) or {}: a small JSON object', () => {
    for (const schema of [undefined, {}]) {
      const v = JSON.parse(outputForSchema(schema, 3)) as unknown;
      expect(v).toBeTypeOf('object');
      expect(Array.isArray(v)).toBe(false);
      expect(Object.keys(v as object).length).toBeGreaterThan(0);
    }
  });
});
